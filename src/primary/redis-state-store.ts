/**
 * State in Redis (`--redis-url`), for proxies whose disk does not survive (containers) and as the
 * base of a fleet sharing one Redis. Keys are namespaced by `--redis-prefix`. Redis is never on
 * the request path: the workers serve from memory whatever Redis does.
 */
import { Redis } from 'ioredis'
import { StateFileError, oneLine } from '../errors'
import { log } from '../lib/logger'
import { parseSnapshot, type Snapshot, type StateStore } from './state-store'

/** A command that gets no answer in this time fails: a deploy must not hang on a lost Redis. */
const COMMAND_TIMEOUT_MS = 2_000
const RECONNECT_MAX_DELAY_MS = 2_000

export class RedisStateStore implements StateStore {
  readonly #redis: Redis
  readonly #key: string
  readonly #label: string
  #lastError = ''

  constructor(url: string, prefix: string) {
    this.#key = `${prefix}state`
    this.#label = `${redactPassword(url)} key ${this.#key}`
    const options = {
      lazyConnect: true,
      // Fail fast instead of queueing while disconnected: callers report the error.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: (attempt: number) => Math.min(attempt * 200, RECONNECT_MAX_DELAY_MS),
    }
    // unix:///run/redis.sock for a local Redis on a socket; redis:// and rediss:// for TCP.
    this.#redis = url.startsWith('unix://') ? new Redis({ ...options, path: url.slice('unix://'.length) }) : new Redis(url, options)
    this.#redis.on('error', (err: Error) => {
      // ioredis repeats the same error on every reconnect attempt: log changes only.
      if (err.message !== this.#lastError) log('warn', 'redis error', { redis: this.#label, error: err.message })
      this.#lastError = err.message
    })
    this.#redis.on('ready', () => {
      if (this.#lastError) log('info', 'redis reconnected', { redis: this.#label })
      this.#lastError = ''
    })
  }

  describe(): string {
    return `redis ${this.#label}`
  }

  async connect(): Promise<void> {
    try {
      await this.#redis.connect()
    } catch (err) {
      throw new StateFileError(`cannot connect to redis ${this.#label}: ${oneLine(err)}`)
    }
  }

  async load(): Promise<Snapshot | undefined> {
    const text = await this.#command('read state from', () => this.#redis.get(this.#key))
    return text === null ? undefined : parseSnapshot(text, this.describe())
  }

  async save(snapshot: Snapshot): Promise<void> {
    await this.#command('save state to', () => this.#redis.set(this.#key, JSON.stringify(snapshot)))
  }

  async check(): Promise<void> {
    await this.#command('reach', () => this.#redis.ping())
  }

  close(): void {
    this.#redis.disconnect()
  }

  async #command<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      throw new StateFileError(`cannot ${what} redis ${this.#label}: ${oneLine(err)}`)
    }
  }
}

function redactPassword(url: string): string {
  return url.replace(/\/\/([^@/]*):[^@/]*@/, '//$1:***@')
}

/**
 * With `--redis-url`: Redis holds the state and the local file keeps a copy. A proxy that finds
 * Redis down at start serves what its file holds (with a warning) rather than nothing; without a
 * file it refuses to start, naming the URL.
 */
export class RedisWithFileStore implements StateStore {
  readonly #redis: RedisStateStore
  readonly #file: StateStore

  constructor(redis: RedisStateStore, file: StateStore) {
    this.#redis = redis
    this.#file = file
  }

  describe(): string {
    return `${this.#redis.describe()} (copy in ${this.#file.describe()})`
  }

  async load(): Promise<Snapshot | undefined> {
    let shared: Snapshot | undefined
    try {
      await this.#redis.connect()
      shared = await this.#redis.load()
    } catch (err) {
      const local = await this.#file.load()
      if (!local) throw err
      log('warn', 'redis unavailable at start: serving the copy in the local file', { error: oneLine(err), file: this.#file.describe() })
      return local
    }
    if (shared) return shared
    // First start with Redis: what this proxy served so far becomes the shared state.
    const local = await this.#file.load()
    if (local) {
      await this.#redis.save(local)
      log('info', 'state copied from the local file to redis', { services: local.services.length })
    }
    return local
  }

  async save(snapshot: Snapshot): Promise<void> {
    await this.#redis.save(snapshot)
    await this.#file.save(snapshot)
  }

  check(): Promise<void> {
    return this.#redis.check()
  }

  close(): void {
    this.#redis.close()
  }
}
