/**
 * Automatic certificates and the ACME account shared by a fleet in Redis: `<prefix>certificates`
 * (host → certificate and key), `<prefix>acme-accounts` (directory URL → account) and
 * `<prefix>acme-failures` (host → last failed orders). One node
 * orders a host's certificate, under a lock; the others hear of it on the channel
 * `<prefix>certificates` (subscribed by the fleet) and load it. Every node answers HTTP-01 challenges, because they share
 * the account key. The state dir keeps a copy of everything, for a start while Redis is down.
 *
 * A record that does not pass its schema (redis-records.ts) is logged and taken as missing: a
 * certificate is then served from the state dir's copy, which replaces the bad record, or
 * ordered again; a bad account is replaced by this node's; a bad failed order only loses its
 * backoff, and the next failure overwrites it.
 */
import type { Redis } from 'ioredis'
import { StateFileError, oneLine } from '../../errors'
import { log } from '../../lib/logger'
import {
  describeCertificate, type AcmeAccount, type CertificateFiles, type CertificateStore, type OrderFailure, type StoredCertificate,
} from '../tls/certificate-files'
import { FleetLock } from './fleet-lock'
import { ACME_ACCOUNT, CERTIFICATE_RECORD, ORDER_FAILURE, UnreadableRecords, recordName } from './redis-records'

// KEYS: a hash. ARGV: a field, the unreadable text read there, the record to put instead. Does
// nothing (returns 0) when the field changed meanwhile: another node replaced it first.
const REPLACE_SCRIPT = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 end
return 0
`

export class SharedCertificates implements CertificateStore {
  readonly channel: string
  readonly #redis: Redis
  readonly #subscriber: Redis
  readonly #files: CertificateFiles
  readonly #node: string
  readonly #prefix: string
  readonly #badCertificates = new UnreadableRecords('unreadable certificate in redis: taken as missing')
  readonly #badAccounts = new UnreadableRecords('unreadable acme account in redis: replaced by this node\'s')
  readonly #badFailures = new UnreadableRecords('unreadable failed order in redis: ignored')

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
    const loaded = new Map<string, StoredCertificate>()
    for (const [host, text] of Object.entries(shared)) {
      const certificate = this.#parse(host, text)
      if (certificate) loaded.set(host, certificate)
    }
    // Certificates this node got before it joined the fleet are shared, not ordered again; so is
    // its copy of one whose record is unreadable.
    for (const certificate of local.filter((own) => !loaded.has(own.host))) {
      const record = JSON.stringify({ cert: certificate.cert, key: certificate.key })
      if (Object.hasOwn(shared, certificate.host)) await this.#replace(this.#certificatesKey, certificate.host, shared[certificate.host], record)
      else await this.#redis.hsetnx(this.#certificatesKey, certificate.host, record)
      loaded.set(certificate.host, certificate)
    }
    return [...loaded.values()]
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
    const shared = text === null ? undefined : this.#account(directoryUrl, text)
    if (shared) return shared
    // An account this node had before it joined the fleet is shared, unless another node's was
    // first; it also replaces an unreadable one (see createAccount).
    const local = await this.#files.loadAccount(directoryUrl)
    return local && this.createAccount(local)
  }

  async createAccount(account: AcmeAccount): Promise<AcmeAccount> {
    const key = this.#accountsKey
    const field = account.directoryUrl
    // Two nodes starting together: the first account stored wins, and both use it.
    await this.#redis.hsetnx(key, field, JSON.stringify(account))
    const text = await this.#redis.hget(key, field)
    let stored = text === null ? undefined : this.#account(field, text)
    if (!stored && text !== null) {
      // An unreadable account signs nothing: this one takes its place, unless another node's did first.
      await this.#replace(key, field, text, JSON.stringify(account))
      const again = await this.#redis.hget(key, field)
      stored = again === null ? undefined : this.#account(field, again)
    }
    stored ??= account
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
    return text === null ? undefined : this.#badFailures.read(ORDER_FAILURE, recordName(this.#failuresKey, host), text)
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

  /** The certificate of `host` from its record, or undefined when unreadable (logged, once per content). */
  #parse(host: string, text: string): StoredCertificate | undefined {
    const where = recordName(this.#certificatesKey, host)
    return this.#badCertificates.readAs(CERTIFICATE_RECORD, where, text, ({ cert, key }) => {
      try {
        return describeCertificate(host, cert, key)
      } catch (err) {
        throw new StateFileError(`invalid redis record ${where} (cert): ${oneLine(err)}`)
      }
    })
  }

  #account(directoryUrl: string, text: string): AcmeAccount | undefined {
    const where = recordName(this.#accountsKey, directoryUrl)
    return this.#badAccounts.readAs(ACME_ACCOUNT, where, text, (account) => {
      if (account.directoryUrl !== directoryUrl) {
        throw new StateFileError(`invalid redis record ${where} (directoryUrl): the account is for ${account.directoryUrl}`)
      }
      return account
    })
  }

  /** Puts `record` in place of the unreadable `text` of the field, unless it changed meanwhile. */
  async #replace(key: string, field: string, text: string, record: string): Promise<void> {
    if (Number(await this.#redis.eval(REPLACE_SCRIPT, 1, key, field, text, record)) === 1) {
      log('info', 'unreadable record in redis replaced', { record: recordName(key, field) })
    }
  }
}
