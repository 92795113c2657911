/**
 * When to order, renew and retry, and what a CA's error means: pure functions of the
 * certificates, the failures and the time, testable without a CA.
 */
import { createHash } from 'node:crypto'
import { oneLine } from '../../errors'
import type { StoredCertificate } from './certificate-files'

/** The longest wait between two orders of a host that keep failing. */
const MAX_RETRY_DELAY_MS = 24 * 3_600_000
/** Renewal starts up to this share of the lifetime earlier, so a fleet does not renew at once. */
const RENEWAL_JITTER = 0.05

/**
 * After the `count`th failed order in a row: `baseMs` doubling up to a day, or later when the CA
 * said when to come back.
 */
export function retryDelayMs(count: number, baseMs: number, error: string, now: number): number {
  const backoff = Math.min(baseMs * 2 ** (count - 1), MAX_RETRY_DELAY_MS)
  return Math.max(backoff, retryAfterMs(error, now))
}

/**
 * A rate-limited CA says when to come back ("retry after 2026-11-27 10:00:00 UTC" in Let's
 * Encrypt's error detail); asking earlier only burns more of the limit.
 */
export function retryAfterMs(message: string, now: number): number {
  const match = /retry after (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)(?:\s*UTC|Z)?/i.exec(message)
  if (!match) return 0
  const at = Date.parse(`${match[1].replace(' ', 'T')}Z`)
  return Number.isNaN(at) ? 0 : Math.max(0, at - now)
}

/** Renewal is due at two thirds of the lifetime, minus a jitter fixed per certificate. */
export function renewalDue(certificate: StoredCertificate, now: number): boolean {
  const start = certificate.notBefore.getTime()
  const lifetime = certificate.notAfter.getTime() - start
  // The jitter is derived from the certificate, so it stays the same between checks.
  const jitter = (parseInt(createHash('sha256').update(certificate.cert).digest('hex').slice(0, 8), 16) / 0xffffffff) * RENEWAL_JITTER
  return now >= start + lifetime * (2 / 3 - jitter)
}

/**
 * What a failed order says to the operator. The ACME library answers a CA it cannot reach (no
 * HTTP response at all) with a TypeError about a missing `config`: say what it means instead.
 */
export function describeOrderError(err: unknown, directoryUrl: string): string {
  const message = oneLine(err)
  if (err instanceof TypeError && /reading 'config'/.test(message)) return `the ACME CA at ${directoryUrl} cannot be reached`
  return message
}

/** The CA's answer to a request signed for an account it does not know (`accountDoesNotExist`). */
export function isUnknownAccount(err: unknown): boolean {
  return /\baccount\b.*\b(not found|does not exist|doesn't exist)|no account exists/i.test(oneLine(err))
}
