/**
 * When each host's certificate must be ordered: the certificates served, the failed orders and
 * their backoff, the orders running, and the hosts left to another node of the fleet for a while.
 * State and decisions only, with no timer and no CA: every decision is given the time, so tests
 * pass a number instead of waiting for a clock.
 */
import type { AcmeOptions } from '../../server-options'
import type { OrderFailure, StoredCertificate } from './certificate-files'
import { renewalDue, retryDelayMs } from './acme-schedule'

/** The part of the ACME options the schedule decides with. */
export type OrderScheduleOptions = Pick<AcmeOptions, 'retryBaseMs' | 'checkIntervalMs'>

export class OrderSchedule {
  readonly #options: OrderScheduleOptions
  readonly #wanted = new Set<string>()
  readonly #certificates = new Map<string, StoredCertificate>()
  readonly #failures = new Map<string, OrderFailure>()
  readonly #ordering = new Set<string>()
  /** Hosts not to order before the given epoch ms: another node orders them, or the fleet could not be asked. */
  readonly #recheckAt = new Map<string, number>()
  /** Epoch ms of the next routine check, which finds the renewals that are due; 0 before the first check. */
  #routineCheckAt = 0

  constructor(options: OrderScheduleOptions) {
    this.#options = options
  }

  /**
   * The hosts that need certificates now; the others are neither ordered nor renewed. A host left
   * out keeps its failures, so that deploying it again waits out the same backoff: the CA counts
   * them whatever became of the service.
   */
  want(hosts: Iterable<string>): void {
    this.#wanted.clear()
    for (const host of hosts) this.#wanted.add(host)
    for (const host of this.#recheckAt.keys()) if (!this.#wanted.has(host)) this.#recheckAt.delete(host)
  }

  certificate(host: string): StoredCertificate | undefined {
    return this.#certificates.get(host)
  }

  failure(host: string): OrderFailure | undefined {
    return this.#failures.get(host)
  }

  isOrdering(host: string): boolean {
    return this.#ordering.has(host)
  }

  /**
   * The wanted hosts to order at `now`: never ordered or due for renewal, past the backoff of their
   * last failure and past any recheck time, and not being ordered already.
   */
  due(now: number): string[] {
    return [...this.#wanted].filter((host) => !this.#ordering.has(host) && this.#needsOrder(host, now) && this.#heldUntil(host) <= now)
  }

  /** The hosts due at `now`, marked as being ordered; this is the routine check too when that is due. */
  takeDue(now: number): string[] {
    if (now >= this.#routineCheckAt) this.#routineCheckAt = now + this.#options.checkIntervalMs
    const due = this.due(now)
    for (const host of due) {
      this.#ordering.add(host)
      this.#recheckAt.delete(host)
    }
    return due
  }

  /**
   * The order of `host` is over, its outcome recorded before. One that left nothing to go by (no
   * current certificate, no failure, no recheck time) waits for the routine check: ordering again
   * at once could only repeat it.
   */
  finishOrder(host: string, now: number): void {
    this.#ordering.delete(host)
    if (this.#wanted.has(host) && this.#needsOrder(host, now) && this.#heldUntil(host) <= now) this.#recheckAt.set(host, this.#routineCheckAt)
  }

  /** A certificate served from now on, issued here, read from the store or ordered by another node: its failures are over. */
  recordCertificate(certificate: StoredCertificate): void {
    this.#certificates.set(certificate.host, certificate)
    this.#failures.delete(certificate.host)
    this.#recheckAt.delete(certificate.host)
  }

  /**
   * A failed order: one more in a row, and the next attempt after a backoff doubling up to a day,
   * or later when the CA said when to come back.
   */
  recordFailure(host: string, error: string, now: number): OrderFailure {
    const count = (this.#failures.get(host)?.count ?? 0) + 1
    const failure = { count, error, nextAttemptAt: now + retryDelayMs(count, this.#options.retryBaseMs, error, now) }
    this.#failures.set(host, failure)
    return failure
  }

  /**
   * Another node's failed order holds here when it counts more failures in a row than this node
   * knows of: its backoff, and its count for the next one. True when it was taken.
   */
  adoptFailure(host: string, failure: OrderFailure): boolean {
    if (failure.count <= (this.#failures.get(host)?.count ?? 0)) return false
    this.#failures.set(host, failure)
    return true
  }

  /** Not to order `host` before `at` (epoch ms), and to look at it again then. */
  recheck(host: string, at: number): void {
    this.#recheckAt.set(host, at)
  }

  /**
   * When the next check must run, never before `now`: the next routine check, or earlier when a
   * wanted host waits for a backoff or a recheck time to pass. Renewals wait for the routine check.
   * A host being ordered counts once its order is over, so a check must follow every order.
   */
  nextCheckAt(now: number): number {
    let next = this.#routineCheckAt
    for (const host of this.#wanted) {
      if (this.#ordering.has(host)) continue
      const at = Math.max(now, this.#heldUntil(host))
      if (this.#needsOrder(host, at)) next = Math.min(next, at)
    }
    return Math.max(now, next)
  }

  // Private

  #needsOrder(host: string, now: number): boolean {
    const certificate = this.#certificates.get(host)
    return !certificate || renewalDue(certificate, now)
  }

  /** Epoch ms before which `host` is not ordered; 0 when nothing holds it back. */
  #heldUntil(host: string): number {
    return Math.max(this.#failures.get(host)?.nextAttemptAt ?? 0, this.#recheckAt.get(host) ?? 0)
  }
}
