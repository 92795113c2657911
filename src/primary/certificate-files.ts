/**
 * Certificates and the ACME account under `<state-dir>/certs/`, files mode 0600, written
 * atomically. One unreadable certificate is logged and skipped; it never stops the others.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { X509Certificate } from 'node:crypto'
import { oneLine } from '../errors'
import { writeFileAtomic } from '../lib/atomic-file'
import { log } from '../lib/logger'

export interface StoredCertificate {
  host: string
  /** PEM chain: leaf first. */
  cert: string
  key: string
  notBefore: Date
  notAfter: Date
}

export interface AcmeAccount {
  directoryUrl: string
  keyPem: string
  /** Known once the CA has registered the account. */
  url?: string
}

const ACCOUNT_FILE = 'account.json'

export class CertificateFiles {
  readonly dir: string

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'certs')
  }

  async loadAll(): Promise<StoredCertificate[]> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 })
    const names = (await fs.readdir(this.dir)).filter((name) => name.endsWith('.crt'))
    const loaded: StoredCertificate[] = []
    for (const name of names) {
      const host = name.slice(0, -'.crt'.length)
      try {
        loaded.push(await this.#load(host))
      } catch (err) {
        log('error', 'stored certificate unreadable, it will be ordered again', { host, error: oneLine(err) })
      }
    }
    return loaded
  }

  async save(host: string, cert: string, key: string): Promise<StoredCertificate> {
    // Key first: a certificate file is only ever read next to a key that matches it.
    await writeFileAtomic(path.join(this.dir, `${host}.key`), key)
    await writeFileAtomic(path.join(this.dir, `${host}.crt`), cert)
    return describe(host, cert, key)
  }

  async loadAccount(): Promise<AcmeAccount | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.dir, ACCOUNT_FILE), 'utf8')) as AcmeAccount
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  async saveAccount(account: AcmeAccount): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 })
    await writeFileAtomic(path.join(this.dir, ACCOUNT_FILE), JSON.stringify(account, null, 2) + '\n')
  }

  async #load(host: string): Promise<StoredCertificate> {
    const cert = await fs.readFile(path.join(this.dir, `${host}.crt`), 'utf8')
    const key = await fs.readFile(path.join(this.dir, `${host}.key`), 'utf8')
    return describe(host, cert, key)
  }
}

function describe(host: string, cert: string, key: string): StoredCertificate {
  const leaf = new X509Certificate(cert)
  return { host, cert, key, notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo) }
}
