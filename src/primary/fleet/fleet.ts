/**
 * This node's part in a fleet of proxies sharing one Redis. It heartbeats, has the reconciler
 * apply what other nodes change (on a pub/sub hint, and on every heartbeat by comparing the
 * shared revision, since pub/sub loses messages while a connection is down), prunes tombstones,
 * and gives the registry the fleet-wide lock and the wait for the other nodes (see Peers).
 */
import type { Redis } from 'ioredis'
import type { NodeStatus } from './fleet-nodes'
import { oneLine } from '../../errors'
import { log } from '../../lib/logger'
import { FleetLock } from './fleet-lock'
import { FleetNodes, HEARTBEAT_INTERVAL_MS } from './fleet-nodes'
import type { Peers, Progress } from './peers'
import { Reconciler, type ChangeHint, type FleetMember } from './reconciler'
import { awaitReports } from './reports'
import type { SharedState } from '../state/shared-state'

export type { FleetMember } from './reconciler'

/** A heartbeat that keeps failing on a live connection is logged this often, not every second. */
const ERROR_LOG_INTERVAL_MS = 30_000

export class Fleet implements Peers {
  readonly nodes: FleetNodes
  readonly #redis: Redis
  readonly #subscriber: Redis
  readonly #shared: SharedState
  readonly #prefix: string
  readonly #channels: string[]
  #reconciler: Reconciler | undefined
  #heartbeat: NodeJS.Timeout | undefined
  #pruning: NodeJS.Timeout | undefined
  readonly #pruneIntervalMs: number
  #beatErrorLoggedAt = 0
  #behindAtLastBeat = false

  /** `channels`: the shared state's, and those other parts listen to on the subscriber connection. */
  constructor(options: { redis: Redis; subscriber: Redis; shared: SharedState; nodes: FleetNodes; prefix: string; channels: string[]; pruneIntervalMs: number }) {
    this.#pruneIntervalMs = options.pruneIntervalMs
    this.#redis = options.redis
    this.#subscriber = options.subscriber
    this.#shared = options.shared
    this.nodes = options.nodes
    this.#prefix = options.prefix
    this.#channels = options.channels
  }

  /** Joins the fleet: heartbeats, and applies changes from now on. */
  async start(member: FleetMember): Promise<void> {
    const reconciler = new Reconciler(this.#shared, this.nodes, member)
    this.#reconciler = reconciler
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.#shared.channel) this.#inBackground(reconciler.reconcile(changeHint(message)))
    })
    // On every (re)connection: subscribe (again), and catch up with what was missed meanwhile.
    this.#subscriber.on('ready', () => {
      this.#subscriber.subscribe(...this.#channels).catch((err) => log('warn', 'cannot subscribe to fleet changes', { error: oneLine(err) }))
      this.#inBackground(reconciler.reconcileIfBehind())
    })
    // Redis down at start: the subscriber keeps reconnecting by itself, and the heartbeat checks.
    this.#subscriber.connect().catch(() => {})
    this.#heartbeat = setInterval(() => void this.#beat(reconciler), HEARTBEAT_INTERVAL_MS)
    this.#pruning = setInterval(() => void this.#prune(), this.#pruneIntervalMs).unref()
    await this.#beat(reconciler)
  }

  async stop(): Promise<void> {
    clearInterval(this.#heartbeat)
    clearInterval(this.#pruning)
    await this.nodes.leave().catch(() => {})
  }

  list(): Promise<NodeStatus[]> {
    return this.nodes.list()
  }

  async exclusive<T>(service: string, maxWaitMs: number, progress: Progress, work: () => Promise<T>): Promise<T> {
    const lock = await FleetLock.acquire(this.#redis, `${this.#prefix}lock:${service}`, this.nodes.self, service, maxWaitMs,
      (holder) => progress(`waiting for node ${holder} to finish its change of ${service}`))
    try {
      return await work()
    } finally {
      await lock.release()
    }
  }

  async catchUp(service: string): Promise<void> {
    await this.#reconciler?.catchUp(service)
  }

  awaitApplied(service: string, revision: number, drainTimeoutMs: number, progress: Progress): Promise<void> {
    return awaitReports(this.nodes, service, revision, drainTimeoutMs, progress)
  }

  // Private

  async #beat(reconciler: Reconciler): Promise<void> {
    try {
      const pipeline = this.#redis.pipeline()
      this.nodes.heartbeat(pipeline, reconciler.revision)
      const replies = await pipeline.mget(...this.#shared.headKeys).exec()
      const [err, values] = replies?.at(-1) ?? [new Error('no reply')]
      if (err) throw err
      const [epoch, revision] = values as [string | null, string | null]
      // A change seen here is usually being notified at the same moment: read everything only
      // if this node is still behind one beat later (a lost notification).
      const behind = reconciler.isBehind(this.#shared.headFrom(epoch, revision))
      if (behind && this.#behindAtLastBeat) this.#inBackground(reconciler.reconcile())
      this.#behindAtLastBeat = behind
    } catch (err) {
      // While the connection is down, the client's error listener reports it. A command that
      // fails on a live connection (or a head that cannot be read) is this node's to report:
      // once per ERROR_LOG_INTERVAL_MS.
      const now = Date.now()
      if (this.#redis.status === 'ready' && now - this.#beatErrorLoggedAt >= ERROR_LOG_INTERVAL_MS) {
        this.#beatErrorLoggedAt = now
        log('warn', 'fleet heartbeat failed', { error: oneLine(err) })
      }
    }
  }

  /** Tombstones every live node has read are deleted, so commits and full reads stay small. */
  async #prune(): Promise<void> {
    try {
      const upTo = await this.nodes.oldestLiveRevision()
      const pruned = upTo > 0 ? await this.#shared.pruneTombstones(upTo) : 0
      if (pruned > 0) log('info', 'pruned removed services from redis', { pruned, upToRevision: upTo })
    } catch (err) {
      if (this.#redis.status === 'ready') log('warn', 'cannot prune removed services from redis', { error: oneLine(err) })
    }
  }

  #inBackground(reconciling: Promise<void>): void {
    reconciling.catch((err) => {
      // While the connection is down its own listener reports it, and the next heartbeat retries.
      if (this.#redis.status === 'ready') log('warn', 'cannot read fleet changes', { error: oneLine(err) })
    })
  }
}

/**
 * A notification `<revision> <service>`, or undefined for anything else (the seed's bare `1`,
 * a message from some other publisher): then the reconciler reads everything.
 */
function changeHint(message: string): ChangeHint | undefined {
  const match = /^(\d+) (\S+)$/.exec(message)
  return match ? { revision: Number(match[1]), service: match[2] } : undefined
}
