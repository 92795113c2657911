/**
 * Automatic certificates and the ACME account shared by a fleet in Redis: `<prefix>certificates`
 * (host → certificate and key), `<prefix>acme-accounts` (directory URL → account) and
 * `<prefix>acme-failures` (host → last failed orders). One node
 * orders a host's certificate, under a lock; the others hear of it on the channel
 * `<prefix>certificates` (subscribed by the fleet) and load it. Every node answers HTTP-01 challenges, because they share
 * the account key. The state dir keeps a copy of everything, for a start while Redis is down.
 */
import type { Redis } from 'ioredis'
import { oneLine } from '../../errors'
import { log } from '../../lib/logger'
import {
  describeCertificate, type AcmeAccount, type CertificateFiles, type CertificateStore, type OrderFailure, type StoredCertificate,
} from '../tls/certificate-files'
import { FleetLock } from './fleet-lock'

export class SharedCertificates implements CertificateStore {
  readonly channel: string
  readonly #redis: Redis
  readonly #subscriber: Redis
  readonly #files: CertificateFiles
  readonly #node: string
  readonly #prefix: string

  constructor(options: { redis: Redis; subscriber: Redis; files: CertificateFiles; node: string; prefix: string; channel: string }) {
    this.#redis = options.redis
    this.#subscriber = options.subscriber
    this.#files = options.files
    this.#node = options.node
    this.#prefix = options.prefix
    this.channel = options.channel
  }

  async loadAll(): Promise<StoredCertificate[]> {
    const local = await this.#files.loadAll()
    let shared: Record<string, string>
    try {
      shared = await this.#redis.hgetall(this.#certificatesKey)
    } catch (err) {
      log('warn', 'redis unavailable: serving the certificates copied in the state dir', { error: oneLine(err) })
      return local
    }
    const loaded: StoredCertificate[] = []
    for (const [host, text] of Object.entries(shared)) {
      const certificate = this.#parse(host, text)
      if (certificate) loaded.push(certificate)
    }
    // Certificates this node got before it joined the fleet are shared, not ordered again.
    for (const certificate of local.filter((own) => !(own.host in shared))) {
      await this.#redis.hsetnx(this.#certificatesKey, certificate.host, JSON.stringify({ cert: certificate.cert, key: certificate.key }))
      loaded.push(certificate)
    }
    return loaded
  }

  async load(host: string): Promise<StoredCertificate | undefined> {
    const text = await this.#redis.hget(this.#certificatesKey, host)
    return text === null ? undefined : this.#parse(host, text)
  }

  /** The state dir first: an issued certificate is never lost, even if Redis went away meanwhile. */
  async save(host: string, cert: string, key: string): Promise<StoredCertificate> {
    const stored = await this.#files.save(host, cert, key)
    try {
      await this.#redis.multi()
        .hset(this.#certificatesKey, host, JSON.stringify({ cert, key }))
        .hdel(this.#failuresKey, host)
        .publish(this.channel, host)
        .exec()
    } catch (err) {
      log('error', 'certificate kept in the state dir only: redis unavailable', { host, error: oneLine(err) })
    }
    return stored
  }

  async loadAccount(directoryUrl: string): Promise<AcmeAccount | undefined> {
    let text: string | null
    try {
      text = await this.#redis.hget(this.#accountsKey, directoryUrl)
    } catch (err) {
      log('warn', 'redis unavailable: using the ACME account copied in the state dir', { error: oneLine(err) })
      return this.#files.loadAccount(directoryUrl)
    }
    if (text !== null) return JSON.parse(text) as AcmeAccount
    // An account this node had before it joined the fleet is shared, unless another node's was first.
    const local = await this.#files.loadAccount(directoryUrl)
    return local && this.createAccount(local)
  }

  async createAccount(account: AcmeAccount): Promise<AcmeAccount> {
    // Two nodes starting together: the first account stored wins, and both use it.
    await this.#redis.hsetnx(this.#accountsKey, account.directoryUrl, JSON.stringify(account))
    const stored = JSON.parse((await this.#redis.hget(this.#accountsKey, account.directoryUrl)) ?? 'null') as AcmeAccount
    await this.#files.saveAccount(stored)
    return stored
  }

  async saveAccount(account: AcmeAccount): Promise<void> {
    await this.#redis.hset(this.#accountsKey, account.directoryUrl, JSON.stringify(account))
    await this.#files.saveAccount(account)
  }

  async ordering(host: string, order: () => Promise<void>): Promise<boolean> {
    const lock = await FleetLock.tryAcquire(this.#redis, `${this.#prefix}lock:certificate:${host}`, this.#node, `the certificate of ${host}`)
    if (!(lock instanceof FleetLock)) return false
    try {
      await order()
    } finally {
      await lock.release()
    }
    return true
  }

  async loadFailure(host: string): Promise<OrderFailure | undefined> {
    const text = await this.#redis.hget(this.#failuresKey, host)
    return text === null ? undefined : (JSON.parse(text) as OrderFailure)
  }

  async saveFailure(host: string, failure: OrderFailure): Promise<void> {
    await this.#redis.hset(this.#failuresKey, host, JSON.stringify(failure))
  }

  onStored(listener: (host: string) => void): void {
    this.#subscriber.on('message', (channel: string, host: string) => {
      if (channel === this.channel) listener(host)
    })
  }

  // Private

  get #certificatesKey(): string {
    return `${this.#prefix}certificates`
  }

  get #failuresKey(): string {
    return `${this.#prefix}acme-failures`
  }

  get #accountsKey(): string {
    return `${this.#prefix}acme-accounts`
  }

  #parse(host: string, text: string): StoredCertificate | undefined {
    try {
      const { cert, key } = JSON.parse(text) as { cert: string; key: string }
      return describeCertificate(host, cert, key)
    } catch (err) {
      log('error', 'certificate in redis unreadable, it will be ordered again', { host, error: oneLine(err) })
      return undefined
    }
  }
}
