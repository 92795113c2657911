/**
 * Certificates an operator provides (`--tls-certificate-path`, `--tls-private-key-path`):
 * read and checked at deploy time, so a wrong file fails the deploy instead of the handshake.
 */
import fs from 'node:fs'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { isIP } from 'node:net'
import { InvalidCertificateError, oneLine } from '../../errors'

export interface LoadedCertificate {
  /** PEM of the certificate and any intermediates, in order. */
  cert: string
  key: string
  notAfter: Date
}

export function loadCertificate(certPath: string, keyPath: string, hosts: readonly string[]): LoadedCertificate {
  const cert = readPem(certPath, 'certificate')
  const key = readPem(keyPath, 'private key')
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(cert)
  } catch (err) {
    throw new InvalidCertificateError(`${certPath} is not a PEM certificate: ${oneLine(err)}`)
  }
  let privateKey
  try {
    privateKey = createPrivateKey(key)
  } catch (err) {
    throw new InvalidCertificateError(`${keyPath} is not a PEM private key: ${oneLine(err)}`)
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new InvalidCertificateError(`the key in ${keyPath} does not belong to the certificate in ${certPath}`)
  }
  const notAfter = new Date(leaf.validTo)
  if (notAfter.getTime() < Date.now()) throw new InvalidCertificateError(`the certificate in ${certPath} expired on ${notAfter.toISOString()}`)
  for (const host of hosts) {
    // A wildcard route is covered when any one-label name under it is.
    const name = host.startsWith('*.') ? `mproxy-check.${host.slice(2)}` : host
    const covered = isIP(name) ? leaf.checkIP(name) !== undefined : leaf.checkHost(name) !== undefined
    if (!covered) {
      throw new InvalidCertificateError(`the certificate in ${certPath} does not cover ${host} (it names ${leaf.subjectAltName ?? leaf.subject})`)
    }
  }
  return { cert, key, notAfter }
}

function readPem(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw new InvalidCertificateError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? oneLine(err)}`)
  }
}
