/**
 * Automatic certificates from an ACME CA (Let's Encrypt by default), one per host name.
 * HTTP-01 challenges are answered by every worker from the account thumbprint alone (key
 * authorization = token.thumbprint), so nothing per token has to reach them. Orders run in the
 * background, when the order schedule says; failures back off exponentially, so a broken name
 * cannot burn the CA's rate limits. Certificates renew at two thirds of their lifetime, with jitter.
 * The conversation with the CA itself runs in a thread of its own (acme-thread.ts), off the
 * primary's event loop: what to order and when, and what becomes of the result, stay here.
 */
import type { CertificateStatus } from './certificate-status'
import type { RouteCertificate } from '../../ipc/messages'
import { oneLine } from '../../errors'
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'
import type { AcmeOptions } from '../../server-options'
import { AcmeAccountClient } from './acme-account'
import type { CertificateStore, OrderFailure, StoredCertificate } from './certificate-files'
import { describeOrderError, renewalDue } from './acme-schedule'
import { AcmeThread } from './acme-thread'
import type { ChallengeType } from './acme-thread-messages'
import { OrderSchedule } from './order-schedule'

/** While another node of the fleet orders a certificate, how often this one looks for it. */
export const FLEET_ORDER_RECHECK_MS = 5_000

export class AcmeManager {
  readonly #options: AcmeOptions
  readonly #store: CertificateStore
  readonly #onChange: () => Promise<void>
  readonly #thread = new AcmeThread()
  readonly #account: AcmeAccountClient
  readonly #schedule: OrderSchedule
  readonly #tlsChallenges = new Map<string, RouteCertificate>()
  #active = false
  /** The one timer: the next check the schedule asks for. */
  #timer: NodeJS.Timeout | undefined

  /**
   * `onChange` is called when a certificate was issued or renewed, or a TLS-ALPN-01 challenge
   * opened or closed; it resolves once the workers serve the change.
   */
  constructor(options: AcmeOptions, store: CertificateStore, onChange: () => Promise<void>) {
    this.#options = options
    this.#store = store
    this.#onChange = onChange
    this.#account = new AcmeAccountClient(options, store, this.#thread)
    this.#schedule = new OrderSchedule(options)
  }

  /** Loads the account (creating its key once) and the stored certificates; orders nothing yet. */
  async load(): Promise<void> {
    await this.#account.load()
    for (const certificate of await this.#store.loadAll()) this.#schedule.recordCertificate(certificate)
  }

  /** Starts ordering and renewing: once the workers listen, since they answer the challenges. */
  activate(): void {
    this.#store.onStored?.((host) => {
      // This node's own order is heard of too: it stores what it ordered itself.
      if (!this.#schedule.isOrdering(host)) void this.#adopt(host)
    })
    this.#active = true
    this.#check()
  }

  stop(): void {
    this.#active = false
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#thread.stop()
  }

  /** What workers append to a token to answer an HTTP-01 challenge. */
  get thumbprint(): string {
    return this.#account.thumbprint
  }

  /** The hosts that need certificates now; others are no longer renewed. */
  manage(hosts: Iterable<string>): void {
    this.#schedule.want(hosts)
    this.#check()
  }

  certificateFor(host: string): StoredCertificate | undefined {
    const certificate = this.#schedule.certificate(host)
    return certificate && certificate.notAfter.getTime() > Date.now() ? certificate : undefined
  }

  tlsChallenges(): RouteCertificate[] {
    return [...this.#tlsChallenges.values()]
  }

  status(host: string): CertificateStatus {
    const certificate = this.certificateFor(host)
    const failure = this.#schedule.failure(host)
    if (certificate) return { state: 'valid', source: 'acme', notAfter: certificate.notAfter.toISOString(), error: failure?.error }
    if (failure) return { state: 'failing', source: 'acme', error: failure.error }
    return { state: 'pending', source: 'acme' }
  }

  // Private

  /** Starts the orders that are due, then sets the timer for the next check: the only place that does. */
  #check(): void {
    if (!this.#active) return
    const now = Date.now()
    for (const host of this.#schedule.takeDue(now)) void this.#order(host, this.#schedule.certificate(host) !== undefined)
    clearTimeout(this.#timer)
    // At most the check interval away, which was checked against what a timer can hold.
    this.#timer = setTimeout(() => this.#check(), this.#schedule.nextCheckAt(now) - now)
    this.#timer.unref()
  }

  async #order(host: string, renewal: boolean): Promise<void> {
    try {
      const order = () => this.#orderUnlessStored(host, renewal)
      const ran = this.#store.ordering ? await this.#store.ordering(host, order) : (await order(), true)
      // Another node of the fleet is ordering it: its certificate is picked up when stored, or
      // its failure when recorded.
      if (!ran) this.#schedule.recheck(host, Date.now() + FLEET_ORDER_RECHECK_MS)
    } catch (err) {
      log('warn', 'cannot coordinate the certificate order with the fleet', { host, error: oneLine(err) })
      this.#schedule.recheck(host, Date.now() + this.#options.retryBaseMs)
    } finally {
      this.#schedule.finishOrder(host, Date.now())
      this.#check()
    }
  }

  async #orderUnlessStored(host: string, renewal: boolean): Promise<void> {
    if (await this.#adopt(host)) return
    // Another node's failed order holds here too; the schedule looks again once its backoff ends.
    const failure = await this.#takeSharedFailure(host)
    if (failure && Date.now() < failure.nextAttemptAt) return
    // HTTP-01 first; after a failure, TLS-ALPN-01 (port 443 only), then alternate.
    const challengeType: ChallengeType = (failure?.count ?? 0) % 2 === 1 ? 'tls-alpn-01' : 'http-01'
    log('info', renewal ? 'certificate renewal started' : 'certificate order started', { host, challenge: challengeType, directory: this.#options.directoryUrl })
    try {
      const issued = await this.#thread.order(this.#account.record(), host, challengeType, this.#account.thumbprint, {
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
      await this.#account.saveUrl(issued.accountUrl)
      const stored = await this.#store.save(host, issued.cert, issued.key)
      this.#schedule.recordCertificate(stored)
      log('info', renewal ? 'certificate renewed' : 'certificate issued', { host, challenge: challengeType, notAfter: stored.notAfter.toISOString() })
      void this.#onChange().catch(() => {})
    } catch (err) {
      // A CA that lost the account gets the same key again, and the order is tried again at once.
      if (await this.#account.recoverUnknown(err, host)) return this.#orderUnlessStored(host, renewal)
      const now = Date.now()
      // The thread's errors are worded for the operator already; this words the others (the store's).
      const error = describeOrderError(err, this.#options.directoryUrl)
      const failed = this.#schedule.recordFailure(host, error, now)
      await this.#store.saveFailure?.(host, failed).catch((saveErr: unknown) => {
        log('warn', 'cannot share the failed order with the fleet', { host, error: oneLine(saveErr) })
      })
      log('error', 'certificate order failed', { host, challenge: challengeType, error, failures: failed.count, retryIn: formatDuration(failed.nextAttemptAt - now) })
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
    if (shared && this.#schedule.adoptFailure(host, shared)) {
      log('info', 'certificate order failed on another node', { host, error: shared.error, retryIn: formatDuration(Math.max(0, shared.nextAttemptAt - Date.now())) })
    }
    return this.#schedule.failure(host)
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
    const served = this.#schedule.certificate(host)
    if (served && served.notAfter >= stored.notAfter) return true
    this.#schedule.recordCertificate(stored)
    log('info', 'certificate loaded from the fleet', { host, notAfter: stored.notAfter.toISOString() })
    await this.#onChange().catch(() => {})
    return true
  }
}
