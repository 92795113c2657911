/**
 * The nodes of a fleet in Redis: each node heartbeats `<prefix>alive:<node>` with a TTL (gone
 * when it expires) and keeps its details in the hash `<prefix>nodes`, which `list` shows. Nodes
 * report how they applied each change in `<prefix>applied:<service>` (node → report), which the
 * node that made the change waits on.
 */
import os from 'node:os'
import type { Redis } from 'ioredis'
import * as v from 'valibot'
import { AlreadyRunningError } from '../../errors'
import { log } from '../../lib/logger'
import type { AppliedChange } from './peers'
import { ALIVE_CLAIM, APPLIED_REPORT, NODE_RECORD, UnreadableRecords, recordName } from './redis-records'

export const HEARTBEAT_INTERVAL_MS = 1_000
/** A node that has not heartbeaten for this long is gone: nobody waits for it. */
export const HEARTBEAT_TTL_MS = 5_000
/** Gone nodes stay listed this long, then their entry is dropped. */
const GONE_NODE_KEPT_MS = 24 * 3_600_000
const APPLIED_KEPT_S = 24 * 3_600

// KEYS: the alive key. ARGV: its value while this process holds it.
const LEAVE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

/** A proxy of the fleet sharing this one's Redis. */
export interface NodeStatus {
  name: string
  /** The node that answers this request. */
  self: boolean
  /** Heartbeating: deploys wait for it. */
  live: boolean
  /** ISO time, by the node's own clock. */
  lastHeartbeatAt: string
  /** The newest revision of the shared state the node had read. */
  revision: number
  pid: number
  hostname: string
  version: string
}

/** What a node writes about itself at every heartbeat (checked on reading by NODE_RECORD). */
export interface NodeRecord {
  pid: number
  hostname: string
  version: string
  heartbeatAt: number
  /** The newest revision of the shared state this node had read. */
  revision: number
  /** The revision of the state it loaded at start: it never applies the changes up to it. */
  startedWith: number
}

export interface AppliedReport extends AppliedChange {
  revision: number
}

export class FleetNodes {
  readonly self: string
  /** The revision of the shared state this node loaded at start. */
  startedWith = 0
  readonly #redis: Redis
  readonly #prefix: string
  readonly #version: string
  readonly #badNodes = new UnreadableRecords('unreadable node record in redis: ignored')
  readonly #badReports = new UnreadableRecords('unreadable report in redis: taken as not reported yet')

  constructor(redis: Redis, prefix: string, self: string, version: string) {
    this.#redis = redis
    this.#prefix = prefix
    this.self = self
    this.#version = version
  }

  /** Queues this node's heartbeat on a pipeline (sent with the state check, in one round trip). */
  heartbeat(pipeline: ReturnType<Redis['pipeline']>, revision: number): void {
    const record: NodeRecord = {
      pid: process.pid, hostname: os.hostname(), version: this.#version, heartbeatAt: Date.now(), revision, startedWith: this.startedWith,
    }
    pipeline.hset(this.#nodesKey, this.self, JSON.stringify(record))
    pipeline.set(this.#aliveKey(this.self), this.#aliveValue, 'PX', HEARTBEAT_TTL_MS)
  }

  /**
   * Refuses a name a live node on another machine has: two nodes under one name would each
   * take the other's reports as their own. The same machine is taken to be this node restarting.
   */
  async join(): Promise<void> {
    let holder: string | null
    try {
      holder = await this.#redis.get(this.#aliveKey(this.self))
    } catch {
      return // Redis is down at start; the heartbeat claims the name once it is back.
    }
    if (holder === null) return
    if (!v.safeParse(ALIVE_CLAIM, holder).success) {
      // Not written by a node: it names no one to refuse the name for, and the heartbeat overwrites it.
      log('warn', 'unreadable node claim in redis: ignored', { record: this.#aliveKey(this.self), value: holder.slice(0, 100) })
      return
    }
    const [hostname, pid] = holder.split(' ')
    if (hostname !== os.hostname()) {
      throw new AlreadyRunningError(`node name ${this.self} is taken by a live mproxy on ${hostname} (pid ${pid}); give each node its own --node-name`)
    }
  }

  /**
   * On a clean stop: nobody needs to wait for this node's TTL to expire. A process that took over
   * under the same name (see takeover.ts) heartbeats the key already: it keeps it.
   */
  async leave(): Promise<void> {
    await this.#redis.eval(LEAVE_SCRIPT, 1, this.#aliveKey(this.self), this.#aliveValue)
  }

  /**
   * The oldest revision of the shared state a live node has read: 0 when none is live. A live
   * node whose record is unreadable counts as having read nothing, which holds pruning back
   * until its next heartbeat rewrites the record: pruning only saves space.
   */
  async oldestLiveRevision(): Promise<number> {
    const nodes = await this.#liveRecords()
    return nodes.size === 0 ? 0 : Math.min(...[...nodes.values()].map((record) => record?.revision ?? 0))
  }

  /**
   * The live nodes, sorted by name, each with the revision of the state it loaded at start. A
   * live node whose record is unreadable is still waited for (its alive key says it is there),
   * as one that did not start with any change.
   */
  async live(): Promise<Map<string, number>> {
    const nodes = await this.#liveRecords()
    return new Map([...nodes].map(([name, record]) => [name, record?.startedWith ?? 0]))
  }

  /** Every node listed in Redis; one whose record is unreadable is left out, and left in Redis. */
  async list(): Promise<NodeStatus[]> {
    const records = await this.#redis.hgetall(this.#nodesKey)
    const names = Object.keys(records).sort()
    if (names.length === 0) return []
    const alive = await this.#redis.mget(names.map((name) => this.#aliveKey(name)))
    const nodes: NodeStatus[] = []
    for (const [index, name] of names.entries()) {
      const record = this.#readNode(name, records[name])
      if (!record) continue
      const live = alive[index] !== null
      if (!live && Date.now() - record.heartbeatAt > GONE_NODE_KEPT_MS) {
        await this.#redis.hdel(this.#nodesKey, name)
        continue
      }
      nodes.push({
        name, self: name === this.self, live, pid: record.pid, hostname: record.hostname, version: record.version,
        lastHeartbeatAt: new Date(record.heartbeatAt).toISOString(), revision: record.revision,
      })
    }
    return nodes
  }

  async reportApplied(service: string, report: AppliedReport): Promise<void> {
    const key = this.#appliedKey(service)
    await this.#redis.multi().hset(key, this.self, JSON.stringify(report)).expire(key, APPLIED_KEPT_S).exec()
  }

  /**
   * The reports on the service's changes, by node. An unreadable one is left out: its node counts
   * as not having reported yet, which the wait for it bounds, and its next report replaces it.
   */
  async appliedReports(service: string): Promise<Map<string, AppliedReport>> {
    const key = this.#appliedKey(service)
    const reports = new Map<string, AppliedReport>()
    for (const [node, text] of Object.entries(await this.#redis.hgetall(key))) {
      const report = this.#badReports.read(APPLIED_REPORT, recordName(key, node), text)
      if (report) reports.set(node, report)
    }
    return reports
  }

  // Private

  /** The live nodes, sorted by name, with their records (undefined when unreadable). */
  async #liveRecords(): Promise<Map<string, NodeRecord | undefined>> {
    const records = await this.#redis.hgetall(this.#nodesKey)
    const names = Object.keys(records).sort()
    if (names.length === 0) return new Map()
    const alive = await this.#redis.mget(names.map((name) => this.#aliveKey(name)))
    return new Map(names.filter((_, index) => alive[index] !== null).map((name) => [name, this.#readNode(name, records[name])]))
  }

  #readNode(name: string, text: string): NodeRecord | undefined {
    return this.#badNodes.read(NODE_RECORD, recordName(this.#nodesKey, name), text)
  }

  /** Who holds the name: `<hostname> <pid>`. */
  get #aliveValue(): string {
    return `${os.hostname()} ${process.pid}`
  }

  get #nodesKey(): string {
    return `${this.#prefix}nodes`
  }

  #aliveKey(node: string): string {
    return `${this.#prefix}alive:${node}`
  }

  #appliedKey(service: string): string {
    return `${this.#prefix}applied:${service}`
  }
}
