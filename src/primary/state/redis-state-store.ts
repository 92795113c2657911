/**
 * State in Redis (`--redis-url`), for proxies whose disk does not survive (containers) and for a
 * fleet of proxies sharing one Redis (see shared-state.ts for the keys). The local state file
 * keeps a copy, so a node that finds Redis down at start serves what it served before (with a
 * warning) rather than nothing; without a copy it refuses to start, naming the URL.
 */
import type { Redis } from 'ioredis'
import { StateFileError, oneLine } from '../../errors'
import { log } from '../../lib/logger'
import type { ServiceSpec } from '../../options'
import { parseSnapshot, STATE_VERSION, type Snapshot, type StateStore } from './state-store'
import type { SharedState } from './shared-state'

/** How often a local copy that could not be written is tried again. */
const COPY_RETRY_MS = 5_000

export class RedisStateStore implements StateStore {
  readonly #redis: Redis
  readonly #shared: SharedState
  readonly #file: StateStore
  readonly #node: string
  readonly #label: string
  readonly #legacyKey: string
  /** The latest snapshot whose local copy failed, until a write succeeds. */
  #unwrittenCopy: Snapshot | undefined
  #copyRetry: NodeJS.Timeout | undefined

  constructor(options: { redis: Redis; shared: SharedState; file: StateStore; node: string; label: string; prefix: string }) {
    this.#redis = options.redis
    this.#shared = options.shared
    this.#file = options.file
    this.#node = options.node
    this.#label = options.label
    // Where the first Redis-backed versions kept one whole snapshot.
    this.#legacyKey = `${options.prefix}state`
  }

  describe(): string {
    return `redis ${this.#label} (copy in ${this.#file.describe()})`
  }

  async load(): Promise<Snapshot | undefined> {
    try {
      await this.#redis.connect()
    } catch (err) {
      const local = await this.#file.load()
      if (!local) throw new StateFileError(`cannot connect to redis ${this.#label}: ${oneLine(err)}`)
      log('warn', 'redis unavailable at start: serving the copy in the local file', { error: oneLine(err), file: this.#file.describe() })
      return local
    }
    let { head, records } = await this.#shared.read()
    if (head.epoch === null) {
      // First start with this Redis (or Redis lost its data): what this node served becomes the shared state.
      const local = (await this.#legacySnapshot()) ?? (await this.#file.load())
      if (await this.#shared.seed(local?.services ?? [], this.#node)) {
        log('info', 'state written to redis', { services: local?.services.length ?? 0 })
      }
      ;({ head, records } = await this.#shared.read())
    }
    const services: ServiceSpec[] = []
    const revisions: Record<string, number> = {}
    for (const [name, record] of records) {
      revisions[name] = record.revision
      if (record.spec) services.push(record.spec)
    }
    return { version: STATE_VERSION, services, revisions }
  }

  async save(snapshot: Snapshot, changed?: string): Promise<number> {
    let revision = 0
    if (changed !== undefined) {
      revision = await this.#shared.commit(changed, snapshot.services.find((spec) => spec.name === changed), this.#node)
    }
    // Redis holds the decision: a local copy that cannot be written now is retried and logged,
    // never turned into a failed (and switched back) change that the rest of the fleet applies.
    await this.#writeCopy({ version: snapshot.version, services: snapshot.services })
    return revision
  }

  async check(): Promise<void> {
    try {
      await this.#redis.ping()
    } catch (err) {
      throw new StateFileError(`cannot reach redis ${this.#label}: ${oneLine(err)}`)
    }
  }

  close(): void {
    clearTimeout(this.#copyRetry)
    this.#redis.disconnect()
  }

  async #writeCopy(snapshot: Snapshot): Promise<void> {
    clearTimeout(this.#copyRetry)
    try {
      await this.#file.save(snapshot)
      if (this.#unwrittenCopy) log('info', 'local copy of the state written again', { file: this.#file.describe() })
      this.#unwrittenCopy = undefined
    } catch (err) {
      if (!this.#unwrittenCopy) {
        log('error', 'state saved in redis, but its local copy could not be written; retrying', { file: this.#file.describe(), error: oneLine(err) })
      }
      this.#unwrittenCopy = snapshot
      this.#copyRetry = setTimeout(() => void this.#writeCopy(this.#unwrittenCopy ?? snapshot), COPY_RETRY_MS).unref()
    }
  }

  async #legacySnapshot(): Promise<Snapshot | undefined> {
    const text = await this.#redis.get(this.#legacyKey)
    return text === null ? undefined : parseSnapshot(text, `redis ${this.#label} key ${this.#legacyKey}`)
  }
}
