/**
 * When to replace a worker that exited unexpectedly: after a delay that doubles while workers
 * keep dying, and not at all once they crash too often (a crash loop).
 */
const RESPAWN_MIN_DELAY_MS = 100
const RESPAWN_MAX_DELAY_MS = 5_000
/** More unexpected exits than this within the window is a crash loop: the primary gives up. */
const CRASH_LOOP_LIMIT = 5
const CRASH_LOOP_WINDOW_MS = 30_000

export type RespawnDecision =
  | { action: 'respawn'; delayMs: number }
  | { action: 'give-up'; reason: string }

export class RespawnPolicy {
  #crashTimes: number[] = []
  #delayMs = RESPAWN_MIN_DELAY_MS

  /** A worker exited unexpectedly. */
  crashed(now = Date.now()): RespawnDecision {
    this.#crashTimes = this.#crashTimes.filter((t) => now - t < CRASH_LOOP_WINDOW_MS)
    this.#crashTimes.push(now)
    if (this.#crashTimes.length > CRASH_LOOP_LIMIT) {
      return { action: 'give-up', reason: `workers crashed ${this.#crashTimes.length} times within ${CRASH_LOOP_WINDOW_MS / 1000}s; giving up` }
    }
    const delayMs = this.#delayMs
    this.#delayMs = Math.min(this.#delayMs * 2, RESPAWN_MAX_DELAY_MS)
    return { action: 'respawn', delayMs }
  }

  /** A worker started listening: the next crash is respawned quickly again. */
  started(): void {
    this.#delayMs = RESPAWN_MIN_DELAY_MS
  }
}
