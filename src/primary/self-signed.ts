/**
 * A self-signed certificate for hosts still waiting for theirs, so a client gets a clear
 * certificate error instead of a handshake that fails without a word.
 */
import { generateKeyPairSync } from 'node:crypto'

export function createSelfSigned(hosts: readonly string[]): { cert: string; key: string } {
  // Loaded on first use: most proxies never need a stand-in.
  const forge = require('node-forge') as typeof import('node-forge')
  // Node's key generation is much faster than forge's pure-JavaScript one.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString())
  cert.serialNumber = Date.now().toString(16)
  cert.validity.notBefore = new Date(Date.now() - 60_000)
  cert.validity.notAfter = new Date(Date.now() + 7 * 86_400_000)
  const name = [{ name: 'commonName', value: `${hosts[0]} (mproxy: certificate pending)` }]
  cert.setSubject(name)
  cert.setIssuer(name)
  cert.setExtensions([{ name: 'subjectAltName', altNames: hosts.map((host) => ({ type: 2, value: host })) }])
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create())
  return { cert: forge.pki.certificateToPem(cert), key: keyPem }
}
