/**
 * Certificates kamal-proxy already holds, reused so that a migration orders none again (CA rate
 * limits). kamal-proxy keeps them in Go autocert caches: one directory per ACME directory,
 * `<acme cache path>/<hex SHA-256 of the directory URL>` ('' for Let's Encrypt), and in it one
 * file per host name (`<host>`, and `<host>+rsa` for the RSA variant) holding the private key
 * followed by the certificate chain, in PEM.
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { oneLine } from '../errors'
import { LETS_ENCRYPT_DIRECTORY } from '../options'
import type { CertificateStore, StoredCertificate } from '../primary/tls/certificate-files'
import type { CertificateSource } from './state-import'

export interface CertificateReuse {
  reused: StoredCertificate[]
  /** Hosts for which no usable certificate was found, and why: mproxy orders these. */
  missing: { host: string; reason: string }[]
}

/** The autocert cache directories that hold certificates from `directoryUrl`. */
export function autocertDirectories(cachePath: string, directory: string, directoryUrl: string): string[] {
  const same = directory === directoryUrl || (directory === '' && directoryUrl === LETS_ENCRYPT_DIRECTORY)
  if (!same) return []
  const hash = (url: string) => createHash('sha256').update(url).digest('hex')
  return [...new Set([hash(directory), hash(directoryUrl)])].map((name) => path.join(cachePath, name))
}

/**
 * A cache file's key and chain, if they are a valid, unexpired certificate for `host` and its key;
 * the key is converted to PKCS #8.
 */
export function readAutocertFile(content: string, host: string, now = new Date()): { cert: string; key: string } {
  const blocks = [...content.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g)]
  const keyBlock = blocks.find((block) => block[1].endsWith('PRIVATE KEY'))
  const chain = blocks.filter((block) => block[1] === 'CERTIFICATE').map((block) => `${block[0]}\n`)
  if (!keyBlock || chain.length === 0) throw new Error('no private key and certificate in PEM')
  const key = createPrivateKey(keyBlock[0])
  const leaf = new X509Certificate(chain[0])
  if (!leaf.checkPrivateKey(key)) throw new Error('the key does not belong to the certificate')
  if (new Date(leaf.validTo).getTime() <= now.getTime()) throw new Error(`expired on ${new Date(leaf.validTo).toISOString()}`)
  if (!leaf.checkHost(host)) throw new Error(`it does not cover ${host}`)
  return { cert: chain.join(''), key: key.export({ type: 'pkcs8', format: 'pem' }).toString() }
}

/**
 * Copies into `store` the certificate kamal-proxy cached for each host (the ECDSA one, else the
 * RSA one) unless the store has one already. The cache is only read.
 */
export async function reuseKamalCertificates(
  sources: readonly CertificateSource[], directoryUrl: string, store: CertificateStore,
): Promise<CertificateReuse> {
  const result: CertificateReuse = { reused: [], missing: [] }
  for (const source of sources) {
    const directories = autocertDirectories(source.cachePath, source.directory, directoryUrl)
    for (const host of source.hosts) {
      if (await store.load(host)) continue
      if (directories.length === 0) {
        result.missing.push({ host, reason: `kamal-proxy ordered it from ${source.directory}, mproxy orders from ${directoryUrl}` })
        continue
      }
      const found = await findCertificate(directories, host)
      if ('reason' in found) result.missing.push({ host, reason: found.reason })
      else result.reused.push(await store.save(host, found.cert, found.key))
    }
  }
  return result
}

async function findCertificate(directories: readonly string[], host: string): Promise<{ cert: string; key: string } | { reason: string }> {
  const problems: string[] = []
  for (const directory of directories) {
    for (const name of [host, `${host}+rsa`]) {
      const file = path.join(directory, name)
      let content: string
      try {
        content = await fs.readFile(file, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`${file}: ${oneLine(err)}`)
        continue
      }
      try {
        return readAutocertFile(content, host)
      } catch (err) {
        problems.push(`${file}: ${oneLine(err)}`)
      }
    }
  }
  return { reason: problems.length > 0 ? problems.join('; ') : `none in ${directories.join(' or ')}` }
}
