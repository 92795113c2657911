/**
 * A lock one node of a fleet holds while it changes a service: `SET key "node token" NX PX`,
 * extended while held and released only by its owner (checked in Lua), so a node that dies
 * holding it blocks the others for one TTL at most.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { StateFileError, oneLine } from '../../errors'
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'

const LOCK_TTL_MS = 15_000
const RETRY_MS = 200

const EXTEND_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`
// KEYS: a lock. ARGV: a TTL. Gives a lock without expiry the TTL a node's has; returns 1 if it did.
const BOUND_SCRIPT = `if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) return 1 end return 0`

export class FleetLock {
  readonly #redis: Redis
  readonly #key: string
  readonly #value: string
  readonly #renewal: NodeJS.Timeout

  /**
   * Takes the lock, retrying until `maxWaitMs` has passed. `onWait` hears the holder's node name
   * once, when the lock is taken by someone else.
   */
  static async acquire(redis: Redis, key: string, node: string, what: string, maxWaitMs: number, onWait: (holder: string) => void): Promise<FleetLock> {
    const deadline = Date.now() + maxWaitMs
    let reported = ''
    for (;;) {
      const attempt = await FleetLock.tryAcquire(redis, key, node, what)
      if (attempt instanceof FleetLock) return attempt
      if (attempt.holder && attempt.holder !== reported) onWait(attempt.holder)
      reported = attempt.holder || reported
      if (Date.now() >= deadline) {
        throw new StateFileError(`timed out after ${formatDuration(maxWaitMs)} waiting for node ${reported} to finish its change of ${what}`)
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
    }
  }

  /** Takes the lock if it is free; otherwise says which node holds it. */
  static async tryAcquire(redis: Redis, key: string, node: string, what: string): Promise<FleetLock | { holder: string }> {
    const value = `${node} ${randomUUID()}`
    try {
      if (await redis.set(key, value, 'PX', LOCK_TTL_MS, 'NX')) return new FleetLock(redis, key, value)
      const holder = (await redis.get(key))?.split(' ')[0] ?? ''
      // Every node's lock expires. One that does not was written by someone else (by hand, say):
      // rather than hold every change up for ever, it expires like the lock of a node that died.
      if (Number(await redis.eval(BOUND_SCRIPT, 1, key, LOCK_TTL_MS)) === 1) {
        log('warn', 'fleet lock without expiry in redis: it expires like a node\'s', { key, holder, expiresIn: formatDuration(LOCK_TTL_MS) })
      }
      return { holder }
    } catch (err) {
      throw new StateFileError(`cannot reach redis to lock ${what}: ${oneLine(err)}`)
    }
  }

  private constructor(redis: Redis, key: string, value: string) {
    this.#redis = redis
    this.#key = key
    this.#value = value
    this.#renewal = setInterval(() => void this.#extend(), LOCK_TTL_MS / 3)
    this.#renewal.unref()
  }

  async release(): Promise<void> {
    clearInterval(this.#renewal)
    // If Redis is away, the lock expires by itself.
    await this.#redis.eval(RELEASE_SCRIPT, 1, this.#key, this.#value).catch(() => {})
  }

  async #extend(): Promise<void> {
    try {
      if (Number(await this.#redis.eval(EXTEND_SCRIPT, 1, this.#key, this.#value, LOCK_TTL_MS)) === 0) {
        log('warn', 'fleet lock lost while held (expired or redis restarted)', { key: this.#key })
      }
    } catch (err) {
      log('warn', 'could not extend fleet lock', { key: this.#key, error: oneLine(err) })
    }
  }
}
