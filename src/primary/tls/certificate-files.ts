/**
 * Certificates and the ACME account under `<state-dir>/certs/`, files mode 0600, written
 * atomically. One unreadable certificate is logged and skipped; it never stops the others.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { X509Certificate } from 'node:crypto'
import { oneLine } from '../../errors'
import { writeFileAtomic } from '../../lib/atomic-file'
import { log } from '../../lib/logger'

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

/** The last failed orders of a host, and when it may be ordered again. */
export interface OrderFailure {
  count: number
  error: string
  /** Epoch ms. */
  nextAttemptAt: number
}

/** Where automatic certificates and the ACME account are kept: files, or Redis for a fleet. */
export interface CertificateStore {
  /** Every readable certificate; unreadable ones are logged and left out. */
  loadAll(): Promise<StoredCertificate[]>
  load(host: string): Promise<StoredCertificate | undefined>
  save(host: string, cert: string, key: string): Promise<StoredCertificate>
  loadAccount(directoryUrl: string): Promise<AcmeAccount | undefined>
  /** Stores a new account unless one exists for its directory already; returns the stored one. */
  createAccount(account: AcmeAccount): Promise<AcmeAccount>
  saveAccount(account: AcmeAccount): Promise<void>
  /**
   * Runs `order` unless another node of the fleet is ordering a certificate for `host`; false
   * when it did not run. Without a fleet, it always runs.
   */
  ordering?(host: string, order: () => Promise<void>): Promise<boolean>
  /** Another node stored a certificate for `host`. */
  onStored?(listener: (host: string) => void): void
  /** Failed orders, shared by a fleet so that every node shows them and respects their backoff. */
  loadFailure?(host: string): Promise<OrderFailure | undefined>
  saveFailure?(host: string, failure: OrderFailure): Promise<void>
}

const ACCOUNT_FILE = 'account.json'

export class CertificateFiles implements CertificateStore {
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
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 })
    // Key first: a certificate file is only ever read next to a key that matches it.
    await writeFileAtomic(path.join(this.dir, `${host}.key`), key)
    await writeFileAtomic(path.join(this.dir, `${host}.crt`), cert)
    return describeCertificate(host, cert, key)
  }

  async load(host: string): Promise<StoredCertificate | undefined> {
    try {
      return await this.#load(host)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  /** The file holds one account: one for another directory counts as none. */
  async loadAccount(directoryUrl: string): Promise<AcmeAccount | undefined> {
    let account: AcmeAccount
    try {
      account = JSON.parse(await fs.readFile(path.join(this.dir, ACCOUNT_FILE), 'utf8')) as AcmeAccount
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    return account.directoryUrl === directoryUrl ? account : undefined
  }

  async createAccount(account: AcmeAccount): Promise<AcmeAccount> {
    await this.saveAccount(account)
    return account
  }

  async saveAccount(account: AcmeAccount): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 })
    await writeFileAtomic(path.join(this.dir, ACCOUNT_FILE), JSON.stringify(account, null, 2) + '\n')
  }

  async #load(host: string): Promise<StoredCertificate> {
    const cert = await fs.readFile(path.join(this.dir, `${host}.crt`), 'utf8')
    const key = await fs.readFile(path.join(this.dir, `${host}.key`), 'utf8')
    return describeCertificate(host, cert, key)
  }
}

export function describeCertificate(host: string, cert: string, key: string): StoredCertificate {
  const leaf = new X509Certificate(cert)
  return { host, cert, key, notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo) }
}
