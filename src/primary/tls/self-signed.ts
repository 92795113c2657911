/**
 * A self-signed certificate for hosts still waiting for theirs, so a client gets a clear
 * certificate error instead of a handshake that fails without a word.
 *
 * The primary must not stall on it: one RSA key serves every stand-in (generated off the event
 * loop by `prepareStandInKey`, or once on first use if that has not finished), and the
 * certificate is signed with node:crypto rather than node-forge's JavaScript RSA. A stand-in
 * then costs about a millisecond instead of ~140 ms.
 */
import { generateKeyPair, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'

interface StandInKey {
  privateKey: KeyObject
  privatePem: string
  publicPem: string
}

let standInKey: StandInKey | undefined
let preparing: Promise<void> | undefined

/** Generates the stand-ins' key in the background; call it early, when TLS services exist. */
export function prepareStandInKey(): Promise<void> {
  preparing ??= new Promise((resolve) => {
    generateKeyPair('rsa', { modulusLength: 2048 }, (err, publicKey, privateKey) => {
      if (!err) standInKey ??= toStandInKey(privateKey, publicKey)
      resolve()
    })
  })
  return preparing
}

export function createSelfSigned(hosts: readonly string[]): { cert: string; key: string } {
  // Loaded on first use: most proxies never need a stand-in.
  const forge = require('node-forge') as typeof import('node-forge')
  if (!standInKey) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    standInKey = toStandInKey(privateKey, publicKey)
  }
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(standInKey.publicPem)
  cert.serialNumber = `01${Date.now().toString(16)}`
  cert.validity.notBefore = new Date(Date.now() - 60_000)
  cert.validity.notAfter = new Date(Date.now() + 7 * 86_400_000)
  const name = [{ name: 'commonName', value: `${hosts[0]} (mproxy: certificate pending)` }]
  cert.setSubject(name)
  cert.setIssuer(name)
  cert.setExtensions([{ name: 'subjectAltName', altNames: hosts.map((host) => ({ type: 2, value: host })) }])
  // What forge's `cert.sign` does, with the RSA signature computed natively.
  cert.signatureOid = cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption
  const { getTBSCertificate } = forge.pki as unknown as { getTBSCertificate(c: typeof cert): import('node-forge').asn1.Asn1 }
  const tbs = getTBSCertificate(cert)
  ;(cert as unknown as { tbsCertificate: unknown }).tbsCertificate = tbs
  const tbsDer = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary')
  cert.signature = sign('sha256', tbsDer, standInKey.privateKey).toString('binary')
  return { cert: forge.pki.certificateToPem(cert), key: standInKey.privatePem }
}

function toStandInKey(privateKey: KeyObject, publicKey: KeyObject): StandInKey {
  return {
    privateKey,
    privatePem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}
