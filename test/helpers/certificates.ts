/** Test helpers: Certificates */
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import forge from 'node-forge'
import { makeStateDir } from './wait'

export interface TestCertificate {
  /** PEM of the test CA that signed the certificate: what clients must trust. */
  ca: string
  certFile: string
  keyFile: string
}

/** A CA and a certificate for `hosts` signed by it, made with node-forge, as files in a temp dir. */
export function makeTestCertificate(hosts: string[], opts: { days?: number } = {}): TestCertificate {
  const pki = forge.pki
  const caKeys = pki.rsa.generateKeyPair(2048)
  const ca = pki.createCertificate()
  ca.publicKey = caKeys.publicKey
  ca.serialNumber = '01'
  ca.validity.notBefore = new Date(Date.now() - 60_000)
  ca.validity.notAfter = new Date(Date.now() + 365 * 86_400_000)
  const caName = [{ name: 'commonName', value: 'mproxy test CA' }]
  ca.setSubject(caName)
  ca.setIssuer(caName)
  ca.setExtensions([{ name: 'basicConstraints', cA: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true }])
  ca.sign(caKeys.privateKey, forge.md.sha256.create())

  const keys = pki.rsa.generateKeyPair(2048)
  const cert = pki.createCertificate()
  cert.publicKey = keys.publicKey
  cert.serialNumber = '02'
  cert.validity.notBefore = new Date(Date.now() - 60_000)
  cert.validity.notAfter = new Date(Date.now() + (opts.days ?? 30) * 86_400_000)
  cert.setSubject([{ name: 'commonName', value: hosts[0] }])
  cert.setIssuer(caName)
  const altNames = hosts.map((host) => (net.isIP(host) ? { type: 7, ip: host } : { type: 2, value: host }))
  cert.setExtensions([{ name: 'subjectAltName', altNames }])
  cert.sign(caKeys.privateKey, forge.md.sha256.create())

  const dir = makeStateDir()
  const certFile = path.join(dir, 'cert.pem')
  const keyFile = path.join(dir, 'key.pem')
  fs.writeFileSync(certFile, pki.certificateToPem(cert))
  fs.writeFileSync(keyFile, pki.privateKeyToPem(keys.privateKey))
  return { ca: pki.certificateToPem(ca), certFile, keyFile }
}
