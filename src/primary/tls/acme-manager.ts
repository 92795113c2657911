/**
 * Automatic certificates from an ACME CA (Let's Encrypt by default), one per host name.
 * One account key, created once and reused forever. HTTP-01 challenges are answered by every
 * worker from the account thumbprint alone (key authorization = token.thumbprint), so nothing
 * per token has to reach them. Orders run in the background; failures back off exponentially,
 * so a broken name cannot burn the CA's rate limits. Certificates renew at two thirds of their
 * lifetime, with jitter. The conversation with the CA itself runs in a thread of its own
 * (acme-thread.ts), off the primary's event loop.
 */
import { createHash, createPublicKey, generateKeyPair } from 'node:crypto'
import { promisify } from 'node:util'
import type { CertificateStatus } from './certificate-status'
import type { RouteCertificate } from '../../ipc/messages'
import { oneLine } from '../../errors'
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'
import type { AcmeOptions } from '../../server-options'
import type { CertificateStore, OrderFailure, StoredCertificate } from './certificate-files'
import { describeOrderError, isUnknownAccount, renewalDue, retryDelayMs } from './acme-schedule'
import { AcmeThread } from './acme-thread'
import type { AcmeAccount } from './acme-thread-messages'

/** While another node of the fleet orders a certificate, how often this one looks for it. */
const FLEET_ORDER_RECHECK_MS = 5_000

export class AcmeManager {
  readonly #options: AcmeOptions
  readonly #store: CertificateStore
  readonly #onChange: () => Promise<void>
  readonly #wanted = new Set<string>()
  readonly #certificates = new Map<string, StoredCertificate>()
  readonly #failures = new Map<string, OrderFailure>()
  readonly #ordering = new Set<string>()
  readonly #tlsChallenges = new Map<string, RouteCertificate>()
  readonly #thread = new AcmeThread()
  #accountKey = ''
  #accountUrl: string | undefined
  #thumbprint = ''
  #timer: NodeJS.Timeout | undefined

  /**
   * `onChange` is called when a certificate was issued or renewed, or a TLS-ALPN-01 challenge
   * opened or closed; it resolves once the workers serve the change.
   */
  constructor(options: AcmeOptions, store: CertificateStore, onChange: () => Promise<void>) {
    this.#options = options
    this.#store = store
    this.#onChange = onChange
  }

  /** Loads the account (creating its key once) and the stored certificates; orders nothing yet. */
  async load(): Promise<void> {
    const directoryUrl = this.#options.directoryUrl
    let account = await this.#store.loadAccount(directoryUrl)
    if (!account) {
      // Off the event loop: an RSA key takes ~80 ms to generate.
      const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 })
      const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()
      account = await this.#store.createAccount({ directoryUrl, keyPem })
      if (account.keyPem === keyPem) log('info', 'acme account key created', { directory: directoryUrl })
    }
    this.#accountKey = account.keyPem
    this.#accountUrl = account.url
    this.#thumbprint = thumbprint(this.#accountKey)
    for (const certificate of await this.#store.loadAll()) this.#certificates.set(certificate.host, certificate)
  }

  /** Starts ordering and renewing: once the workers listen, since they answer the challenges. */
  activate(): void {
    this.#store.onStored?.((host) => {
      // This node's own order is heard of too: it stores what it ordered itself.
      if (!this.#ordering.has(host)) void this.#adopt(host)
    })
    this.#timer = setInterval(() => this.#check(), this.#options.checkIntervalMs)
    this.#timer.unref()
    this.#check()
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#thread.stop()
  }

  /** What workers append to a token to answer an HTTP-01 challenge. */
  get thumbprint(): string {
    return this.#thumbprint
  }

  /** The hosts that need certificates now; others are no longer renewed. */
  manage(hosts: Iterable<string>): void {
    this.#wanted.clear()
    for (const host of hosts) this.#wanted.add(host)
    this.#check()
  }

  certificateFor(host: string): StoredCertificate | undefined {
    const certificate = this.#certificates.get(host)
    return certificate && certificate.notAfter.getTime() > Date.now() ? certificate : undefined
  }

  tlsChallenges(): RouteCertificate[] {
    return [...this.#tlsChallenges.values()]
  }

  status(host: string): CertificateStatus {
    const certificate = this.certificateFor(host)
    const failure = this.#failures.get(host)
    if (certificate) return { state: 'valid', source: 'acme', notAfter: certificate.notAfter.toISOString(), error: failure?.error }
    if (failure) return { state: 'failing', source: 'acme', error: failure.error }
    return { state: 'pending', source: 'acme' }
  }

  // Private

  #check(): void {
    if (!this.#timer) return
    const now = Date.now()
    for (const host of this.#wanted) {
      const certificate = this.#certificates.get(host)
      if (this.#ordering.has(host) || (certificate && !renewalDue(certificate, now))) continue
      const failure = this.#failures.get(host)
      if (failure && now < failure.nextAttemptAt) continue
      void this.#order(host, certificate !== undefined)
    }
  }

  async #order(host: string, renewal: boolean): Promise<void> {
    this.#ordering.add(host)
    try {
      const order = () => this.#orderUnlessStored(host, renewal)
      const ran = this.#store.ordering ? await this.#store.ordering(host, order) : (await order(), true)
      // Another node of the fleet is ordering it: its certificate is picked up when stored, or
      // its failure when recorded.
      if (!ran) setTimeout(() => this.#check(), FLEET_ORDER_RECHECK_MS).unref()
    } catch (err) {
      log('warn', 'cannot coordinate the certificate order with the fleet', { host, error: oneLine(err) })
      setTimeout(() => this.#check(), this.#options.retryBaseMs).unref()
    } finally {
      this.#ordering.delete(host)
    }
  }

  async #orderUnlessStored(host: string, renewal: boolean): Promise<void> {
    if (await this.#adopt(host)) return
    // Another node's failed order holds here too: its backoff, and its count for the next one.
    const failure = await this.#takeSharedFailure(host)
    if (failure && Date.now() < failure.nextAttemptAt) {
      setTimeout(() => this.#check(), failure.nextAttemptAt - Date.now()).unref()
      return
    }
    // HTTP-01 first; after a failure, TLS-ALPN-01 (port 443 only), then alternate.
    const challengeType = (this.#failures.get(host)?.count ?? 0) % 2 === 1 ? 'tls-alpn-01' : 'http-01'
    log('info', renewal ? 'certificate renewal started' : 'certificate order started', { host, challenge: challengeType, directory: this.#options.directoryUrl })
    try {
      const issued = await this.#thread.order(this.#account(), host, challengeType, this.#thumbprint, {
        created: async ({ challengeType: type, alpn, keyAuthorizationMatches }) => {
          if (alpn) {
            this.#tlsChallenges.set(host, { hosts: [host], ...alpn })
            // The CA may connect as soon as this returns: every worker must have the certificate.
            await this.#onChange()
          } else if (!keyAuthorizationMatches) {
            log('warn', 'unexpected key authorization', { host })
          }
          log('info', 'challenge ready', { host, type })
        },
        removed: async () => {
          if (this.#tlsChallenges.delete(host)) await this.#onChange()
        },
      })
      // The CA only issues once the challenge has passed.
      log('info', 'challenge passed', { host, type: challengeType })
      await this.#saveAccountUrl(issued.accountUrl)
      this.#certificates.set(host, await this.#store.save(host, issued.cert, issued.key))
      this.#failures.delete(host)
      const stored = this.#certificates.get(host)
      log('info', renewal ? 'certificate renewed' : 'certificate issued', { host, challenge: challengeType, notAfter: stored?.notAfter.toISOString() })
      void this.#onChange().catch(() => {})
    } catch (err) {
      if (this.#accountUrl !== undefined && isUnknownAccount(err)) {
        // The CA lost the account (a reset, a deactivation): register the same key again and
        // order at once, rather than failing every order for ever.
        log('warn', 'acme account unknown to the CA, registering it again', { account: this.#accountUrl, error: oneLine(err) })
        if (await this.#registerAgain(host)) return this.#orderUnlessStored(host, renewal)
      }
      const previous = this.#failures.get(host)
      const count = (previous?.count ?? 0) + 1
      const error = describeOrderError(err, this.#options.directoryUrl)
      const delay = retryDelayMs(count, this.#options.retryBaseMs, error, Date.now())
      const failure = { count, error, nextAttemptAt: Date.now() + delay }
      this.#failures.set(host, failure)
      await this.#store.saveFailure?.(host, failure).catch((saveErr: unknown) => {
        log('warn', 'cannot share the failed order with the fleet', { host, error: oneLine(saveErr) })
      })
      log('error', 'certificate order failed', { host, challenge: challengeType, error, failures: count, retryIn: formatDuration(delay) })
      setTimeout(() => this.#check(), delay).unref()
    }
  }

  /**
   * Another node's failures count here: `list` shows them, the challenge type alternates and the
   * backoff grows fleet-wide. Returns the failure that now holds for the host.
   */
  async #takeSharedFailure(host: string): Promise<OrderFailure | undefined> {
    const shared = await this.#store.loadFailure?.(host).catch((err: unknown) => {
      log('warn', "cannot read the fleet's failed orders", { host, error: oneLine(err) })
      return undefined
    })
    if (shared && shared.count > (this.#failures.get(host)?.count ?? 0)) {
      this.#failures.set(host, shared)
      log('info', 'certificate order failed on another node', { host, error: shared.error, retryIn: formatDuration(Math.max(0, shared.nextAttemptAt - Date.now())) })
    }
    return this.#failures.get(host)
  }

  /**
   * Takes the stored certificate of `host` if it is newer than the one served and not due for
   * renewal (another node of the fleet ordered it). True when it serves a current one now.
   */
  async #adopt(host: string): Promise<boolean> {
    let stored: StoredCertificate | undefined
    try {
      stored = await this.#store.load(host)
    } catch (err) {
      log('warn', 'stored certificate unreadable', { host, error: oneLine(err) })
    }
    if (!stored || renewalDue(stored, Date.now())) return false
    const served = this.#certificates.get(host)
    if (served && served.notAfter >= stored.notAfter) return true
    this.#certificates.set(host, stored)
    this.#failures.delete(host)
    log('info', 'certificate loaded from the fleet', { host, notAfter: stored.notAfter.toISOString() })
    await this.#onChange().catch(() => {})
    return true
  }

  #account(): AcmeAccount {
    return { directoryUrl: this.#options.directoryUrl, keyPem: this.#accountKey, url: this.#accountUrl, email: this.#options.email }
  }

  /** Registers the account key anew; false (and the order fails as usual) if the CA refuses. */
  async #registerAgain(host: string): Promise<boolean> {
    this.#accountUrl = undefined
    try {
      const registration = await this.#thread.register(this.#account())
      if (registration.answeredWithError) {
        log('debug', 'acme account registration answered with an error', { host, error: registration.answeredWithError })
      }
      if (!registration.accountUrl) throw new Error(registration.error ?? 'the CA gave no account URL')
      await this.#saveAccountUrl(registration.accountUrl)
      return true
    } catch (err) {
      log('error', 'acme account could not be registered again', { host, error: oneLine(err) })
      return false
    }
  }

  async #saveAccountUrl(url: string): Promise<void> {
    if (this.#accountUrl === url) return
    this.#accountUrl = url
    await this.#store.saveAccount({ directoryUrl: this.#options.directoryUrl, keyPem: this.#accountKey, url })
  }
}

/** RFC 7638 JWK thumbprint of the account key, base64url. */
export function thumbprint(accountKeyPem: string): string {
  const jwk = createPublicKey(accountKeyPem).export({ format: 'jwk' })
  const canonical = jwk.kty === 'EC'
    ? JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
    : JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })
  return createHash('sha256').update(canonical).digest('base64url')
}
