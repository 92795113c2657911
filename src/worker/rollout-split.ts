/**
 * Which slot of a service a request goes to while a rollout is on: requests carrying the
 * `kamal-rollout` cookie are split by its value, so one user (one value) always lands on the
 * same slot. Listed values always go to the rollout; the others go there when the 32-bit
 * FNV-1a hash of the value falls under the percentage. Requests without the cookie stay on the
 * active targets. Pure, and allocation-free on the request path.
 */
import { cookieValue } from './request-cookies'

export const ROLLOUT_COOKIE = 'kamal-rollout'

export interface RolloutSplit {
  /** 0-100: the share of cookie values sent to the rollout targets. */
  percent: number
  /** Cookie values always sent to the rollout targets. */
  allowlist: readonly string[]
}

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193
const MAX_HASH = 0xffffffff

/** 32-bit FNV-1a of the UTF-8 bytes of `value`. */
export function fnv1a(value: string): number {
  let hash = FNV_OFFSET
  for (const byte of Buffer.from(value, 'utf8')) {
    hash ^= byte
    hash = Math.imul(hash, FNV_PRIME) >>> 0
  }
  return hash >>> 0
}

/** The hash at or under which a value goes to the rollout, for a percentage. */
export function splitPoint(percent: number): number {
  return (MAX_HASH * percent) / 100
}

/** Whether a request with this cookie value goes to the rollout targets. */
export function inRollout(split: RolloutSplit, value: string | undefined): boolean {
  if (value === undefined) return false
  if (split.allowlist.includes(value)) return true
  return fnv1a(value) <= splitPoint(split.percent)
}

/** The value of the `kamal-rollout` cookie in a Cookie header, if present. */
export function rolloutCookie(cookieHeader: string | undefined): string | undefined {
  return cookieValue(cookieHeader, ROLLOUT_COOKIE)
}
