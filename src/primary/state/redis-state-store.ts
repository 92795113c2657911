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
import type { SharedRead, SharedState } from './shared-state'

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
      return this.#localInstead(`cannot connect to redis ${this.#label}`, 'redis unavailable at start: serving the copy in the local file', err)
    }
    let read: SharedRead
    try {
      read = await this.#shared.read()
      if (read.head.epoch === null) {
        // First start with this Redis (or Redis lost its data): what this node served becomes the shared state.
        const local = (await this.#legacySnapshot()) ?? (await this.#file.load())
        if (await this.#shared.seed(local?.services ?? [], this.#node)) {
          log('info', 'state written to redis', { services: local?.services.length ?? 0 })
        }
        read = await this.#shared.read()
      }
    } catch (err) {
      // Unreadable (its revision counter, say) is treated like unreachable; the fleet catches up
      // once Redis can be read.
      if (!(err instanceof StateFileError)) throw err
      return this.#localInstead(`cannot read the state in redis ${this.#label}`, 'redis state unreadable at start: serving the copy in the local file', err)
    }
    const services: ServiceSpec[] = []
    const revisions: Record<string, number> = {}
    for (const [name, record] of read.records) {
      revisions[name] = record.revision
      if (record.spec) services.push(record.spec)
    }
    services.push(...(await this.#localCopiesOf(read.unreadable, services)))
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

  /** The local copy, logged as served instead of Redis; without one, the start fails with `failure`. */
  async #localInstead(failure: string, warning: string, err: unknown): Promise<Snapshot> {
    const local = await this.#file.load()
    if (!local) throw new StateFileError(`${failure}: ${oneLine(err)}`)
    log('warn', warning, { error: oneLine(err), file: this.#file.describe() })
    return local
  }

  /**
   * The local copies of services whose record in Redis is unreadable, so that this node goes on
   * serving what it served and its next copy keeps them. They carry no revision: any readable
   * change of them applies. One whose hosts a readable record has taken is left out.
   */
  async #localCopiesOf(names: Set<string>, served: ServiceSpec[]): Promise<ServiceSpec[]> {
    if (names.size === 0) return []
    const local = await this.#file.load().catch((err: unknown) => {
      log('warn', 'cannot read the local copy for services unreadable in redis', { file: this.#file.describe(), error: oneLine(err) })
      return undefined
    })
    const taken = new Set(served.flatMap(claims))
    const copies = (local?.services ?? []).filter((spec) => names.has(spec.name) && claims(spec).every((host) => !taken.has(host)))
    for (const name of names) {
      if (copies.some((spec) => spec.name === name)) log('warn', 'serving the local copy of a service unreadable in redis', { service: name })
      else log('error', 'not serving a service unreadable in redis: no local copy of it', { service: name })
    }
    return copies
  }

  async #legacySnapshot(): Promise<Snapshot | undefined> {
    const text = await this.#redis.get(this.#legacyKey)
    return text === null ? undefined : parseSnapshot(text, `redis ${this.#label} key ${this.#legacyKey}`)
  }
}

/** The hosts a service answers for; '' for the default service (no host). */
function claims(spec: ServiceSpec): string[] {
  return spec.hosts.length === 0 ? [''] : spec.hosts
}
