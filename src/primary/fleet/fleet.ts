/**
 * This node's part in a fleet of proxies sharing one Redis. It applies what other nodes change
 * (on a pub/sub hint, and on every heartbeat by comparing the shared revision, since pub/sub
 * loses messages while a connection is down), reports back how each change went, and gives the
 * registry the fleet-wide lock and the wait for the other nodes (see Peers).
 */
import type { Redis } from 'ioredis'
import type { NodeStatus } from './fleet-nodes'
import { oneLine } from '../../errors'
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'
import type { ServiceSpec } from '../../options'
import { FleetLock } from './fleet-lock'
import { FleetNodes, HEARTBEAT_INTERVAL_MS } from './fleet-nodes'
import { SHARED_HEALTH_WAIT_MS, type AppliedChange, type Peers, type Progress } from './peers'
import type { SharedHead, SharedRecord, SharedState } from '../state/shared-state'

/** What the fleet needs from the registry. */
export interface FleetMember {
  /** The revision of the service's last change this node has, 0 if none. */
  revisionOf(service: string): number
  /** Applies a change made through another node; undefined if this node already has a newer one. */
  applyShared(service: string, revision: number, spec: ServiceSpec | undefined): Promise<AppliedChange | undefined>
  /** Redis lost its data: revisions start again from 1. */
  forgetRevisions(): void
  services(): ServiceSpec[]
}

/** What a change notification says: its revision and the service it changed. */
interface ChangeHint {
  revision: number
  service: string
}

/** How often the wait for other nodes reads their reports; liveness is checked every 10th time. */
const REPORT_POLL_MS = 100
/** Beyond the health check and the drain, how long a node may take to report. */
const REPORT_GRACE_MS = 5_000
/** A heartbeat that keeps failing on a live connection is logged this often, not every second. */
const ERROR_LOG_INTERVAL_MS = 30_000

export class Fleet implements Peers {
  readonly nodes: FleetNodes
  readonly #redis: Redis
  readonly #subscriber: Redis
  readonly #shared: SharedState
  readonly #prefix: string
  readonly #channels: string[]
  #member: FleetMember | undefined
  #heartbeat: NodeJS.Timeout | undefined
  #pruning: NodeJS.Timeout | undefined
  readonly #pruneIntervalMs: number
  #beatErrorLoggedAt = 0
  /**
   * The shared state this node has caught up with. Its epoch is that of the revisions the
   * registry holds: null when it holds none (started from the file while Redis was down).
   */
  #head: SharedHead = { epoch: null, revision: 0 }
  #reconciling: Promise<void> | undefined
  #reconcileAgain = false
  #behindAtLastBeat = false
  /** Per service: the newest revision being applied, and its promise. */
  readonly #applying = new Map<string, { revision: number; done: Promise<void> }>()

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
    this.#member = member
    // The registry holds what the store read at start: changes since then are caught up with.
    this.#head = this.#shared.lastRead
    this.nodes.startedWith = this.#head.revision
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#shared.channel) return
      const [revision, service] = message.split(' ')
      this.#inBackground(this.#reconcile(service === undefined ? undefined : { revision: Number(revision), service }))
    })
    // On every (re)connection: subscribe (again), and catch up with what was missed meanwhile.
    this.#subscriber.on('ready', () => {
      this.#subscriber.subscribe(...this.#channels).catch((err) => log('warn', 'cannot subscribe to fleet changes', { error: oneLine(err) }))
      this.#inBackground(this.#reconcileIfBehind())
    })
    // Redis down at start: the subscriber keeps reconnecting by itself, and the heartbeat checks.
    this.#subscriber.connect().catch(() => {})
    this.#heartbeat = setInterval(() => void this.#beat(), HEARTBEAT_INTERVAL_MS)
    this.#pruning = setInterval(() => void this.#prune(), this.#pruneIntervalMs).unref()
    await this.#beat()
  }

  async stop(): Promise<void> {
    clearInterval(this.#heartbeat)
    clearInterval(this.#pruning)
    await this.nodes.leave().catch(() => {})
    this.#subscriber.disconnect()
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
    await this.#reconcileIfBehind()
    await this.#applying.get(service)?.done
  }

  async awaitApplied(service: string, revision: number, drainTimeoutMs: number, progress: Progress): Promise<void> {
    const pending = new Set([...(await this.nodes.live()).keys()].filter((node) => node !== this.nodes.self))
    if (pending.size === 0) return
    const names = [...pending].join(', ')
    progress(`waiting for ${pending.size} other ${pending.size === 1 ? 'node' : 'nodes'} to switch and drain: ${names}`)
    const timeoutMs = SHARED_HEALTH_WAIT_MS + drainTimeoutMs + REPORT_GRACE_MS
    const deadline = Date.now() + timeoutMs
    for (let poll = 1; pending.size > 0 && Date.now() < deadline; poll++) {
      await new Promise((resolve) => setTimeout(resolve, REPORT_POLL_MS))
      try {
        const reports = await this.nodes.appliedReports(service)
        for (const node of pending) {
          const report = reports.get(node)
          if (!report || report.revision < revision) continue
          pending.delete(node)
          progress(`${report.warning ? 'warning: ' : ''}node ${node}: ${report.summary}`)
        }
        if (poll % 10 !== 0) continue
        const live = await this.nodes.live()
        for (const node of pending) {
          const startedWith = live.get(node)
          if (startedWith === undefined) {
            pending.delete(node)
            progress(`node ${node}: stopped heartbeating, not waiting for it`)
          } else if (startedWith >= revision) {
            pending.delete(node)
            progress(`node ${node}: started with the change`)
          }
        }
      } catch (err) {
        // The change is saved; only the view of the other nodes is lost while Redis is away.
        log('warn', 'cannot read fleet reports', { service, error: oneLine(err) })
      }
    }
    for (const node of pending) progress(`warning: node ${node} did not report within ${formatDuration(timeoutMs)}; it may still be switching or draining`)
  }

  // Private

  async #beat(): Promise<void> {
    try {
      const pipeline = this.#redis.pipeline()
      this.nodes.heartbeat(pipeline, this.#head.revision)
      const replies = await pipeline.mget(`${this.#prefix}epoch`, `${this.#prefix}revision`).exec()
      const [err, head] = replies?.at(-1) ?? [new Error('no reply')]
      if (err) throw err
      const [epoch, revision] = head as [string | null, string | null]
      // A change seen here is usually being notified at the same moment: read everything only
      // if this node is still behind one beat later (a lost notification).
      const behind = this.#isBehind({ epoch, revision: Number(revision ?? 0) })
      if (behind && this.#behindAtLastBeat) this.#inBackground(this.#reconcile())
      this.#behindAtLastBeat = behind
    } catch (err) {
      // While the connection is down, the client's error listener reports it. A command that
      // fails on a live connection is this node's to report: once per ERROR_LOG_INTERVAL_MS.
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

  /** Whether Redis has changes this node has not read, or is empty and needs the state written back. */
  #isBehind(head: SharedHead): boolean {
    return head.epoch === null || head.epoch !== this.#head.epoch || head.revision !== this.#head.revision
  }

  async #reconcileIfBehind(): Promise<void> {
    if (this.#isBehind(await this.#shared.head())) await this.#reconcile()
  }

  #inBackground(reconciling: Promise<void>): void {
    reconciling.catch((err) => {
      // While the connection is down its own listener reports it, and the next heartbeat retries.
      if (this.#redis.status === 'ready') log('warn', 'cannot read fleet changes', { error: oneLine(err) })
    })
  }

  /**
   * Runs one reconcile at a time; calls meanwhile run one more afterwards, reading everything.
   * Told of the change that follows the revision this node has, it reads that service only.
   */
  #reconcile(change?: ChangeHint): Promise<void> {
    if (this.#reconciling) {
      this.#reconcileAgain = true
      return this.#reconciling
    }
    this.#reconciling = (async () => {
      try {
        if (change) await this.#reconcileChange(change)
        else this.#reconcileAgain = true
        while (this.#reconcileAgain) {
          this.#reconcileAgain = false
          await this.#reconcileOnce()
        }
      } finally {
        this.#reconciling = undefined
      }
    })()
    return this.#reconciling
  }

  /** The next change after what this node has: one record to read. Anything else: read all. */
  async #reconcileChange({ revision, service }: ChangeHint): Promise<void> {
    if (revision <= this.#head.revision) return
    const { epoch, record } = revision === this.#head.revision + 1 ? await this.#shared.readOne(service) : { epoch: null, record: undefined }
    if (epoch === null || epoch !== this.#head.epoch || !record) {
      this.#reconcileAgain = true
      return
    }
    if (record.revision > this.#newest(service)) this.#apply(service, record)
    this.#head = { epoch, revision }
  }

  async #reconcileOnce(): Promise<void> {
    const member = this.#member!
    const { head, records } = await this.#shared.read()
    if (head.epoch === null) {
      if (await this.#shared.seed(member.services(), this.nodes.self)) {
        log('warn', 'redis was empty: wrote back the state this node serves', { services: member.services().length })
      }
      this.#reconcileAgain = true
      return
    }
    if (this.#head.epoch !== null && head.epoch !== this.#head.epoch) {
      // Revisions counted again from 1: what this node has applied says nothing about them.
      log('warn', 'redis state was written anew: reapplying it', { epoch: head.epoch })
      member.forgetRevisions()
      this.#applying.clear()
      this.nodes.startedWith = 0
    }
    for (const [service, record] of records) {
      if (record.revision > this.#newest(service)) this.#apply(service, record)
    }
    // A service this node has from Redis, whose record is gone: its tombstone was pruned while
    // this node was away. (One deployed here but not committed yet has no revision so far.)
    for (const { name } of member.services()) {
      const revision = this.#newest(name)
      if (!records.has(name) && revision > 0 && revision < head.revision) {
        this.#apply(name, { revision: head.revision, origin: 'the fleet (pruned removal)', spec: undefined })
      }
    }
    this.#head = head
  }

  /** The newest revision of the service this node has or is applying. */
  #newest(service: string): number {
    return Math.max(this.#member!.revisionOf(service), this.#applying.get(service)?.revision ?? 0)
  }

  #apply(service: string, record: SharedRecord): void {
    const previous = this.#applying.get(service)?.done ?? Promise.resolve()
    const done = previous.then(async () => {
      let applied: AppliedChange | undefined
      try {
        applied = await this.#member!.applyShared(service, record.revision, record.spec)
        if (!applied) return
        log(applied.warning ? 'warn' : 'info', 'applied change from another node', {
          service, revision: record.revision, origin: record.origin, result: applied.summary,
        })
      } catch (err) {
        log('error', 'could not apply change from another node', { service, revision: record.revision, error: oneLine(err) })
        applied = { summary: `could not apply the change: ${oneLine(err)}`, warning: true }
      }
      // The node that made the change is waiting for this report.
      await this.nodes.reportApplied(service, { ...applied, revision: record.revision })
        .catch((err) => log('warn', 'cannot report to the fleet', { service, error: oneLine(err) }))
    })
    this.#applying.set(service, { revision: record.revision, done })
  }
}
