/**
 * The state a fleet shares in Redis, under `<prefix>`:
 *
 * - `services`: hash of service name → record `{revision, origin, spec}`, or `{revision, origin,
 *   removed: true}` for a removed service (a tombstone, so a node that missed the removal still
 *   learns of it by revision). Tombstones every live node has read are pruned.
 * - `revision`: counter, raised by every change; `epoch`: random id written with the first state.
 *   Redis that restarted empty has no epoch: a node notices and writes back what it serves.
 * - channel `changes`: `<revision> <service>` after each change, so a node that saw the revision
 *   before reads that one record. Only a hint: pub/sub loses messages while a node is
 *   disconnected, so nodes also compare `revision` on every heartbeat, and read every record then.
 *
 * Each change is one Lua script, so the host check, the record and the revision are atomic.
 *
 * A record that does not pass SERVICE_RECORD is never applied, and never deleted: a node goes
 * on serving what it had (or, at start, its local copy), and the next deploy or removal of the
 * service replaces the record. The scripts step over such records too, so one bad record holds
 * up no change of another service.
 */
import { randomUUID } from 'node:crypto'
import type { ChainableCommander, Redis } from 'ioredis'
import { StateFileError, defaultServiceTakenError, hostTakenError, oneLine } from '../../errors'
import { parseWith } from '../../lib/schema'
import type { ServiceSpec } from '../../options'
import { REVISION_COUNTER, SERVICE_RECORD, UnreadableRecords, recordName } from '../fleet/redis-records'

export interface SharedRecord {
  revision: number
  /** Name of the node the change was made through. */
  origin: string
  /** Undefined once the service is removed. */
  spec?: ServiceSpec
}

/** Every record, with the head it was read at. */
export interface SharedRead {
  head: SharedHead
  records: Map<string, SharedRecord>
  /** Services whose record is unreadable: neither applied nor taken as gone. */
  unreadable: Set<string>
}

export interface SharedHead {
  epoch: string | null
  revision: number
}

// KEYS: epoch, revision, services. ARGV: name, record without its revision, hosts (JSON, or '' for
// a removal), channel, expected epoch.
const COMMIT_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[5] then return redis.error_reply('EPOCH') end
if ARGV[3] ~= '' then
  local hosts = cjson.decode(ARGV[3])
  local wanted = {}
  for _, host in ipairs(hosts) do wanted[host] = true end
  local all = redis.call('HGETALL', KEYS[3])
  for i = 1, #all, 2 do
    if all[i] ~= ARGV[1] then
      -- An unreadable record claims no host: no node serves it from Redis.
      local ok, other = pcall(cjson.decode, all[i + 1])
      if ok and type(other) == 'table' and type(other.spec) == 'table' and type(other.spec.hosts) == 'table' then
        if #hosts == 0 and #other.spec.hosts == 0 then return redis.error_reply('HOSTLESS ' .. all[i]) end
        for _, host in ipairs(other.spec.hosts) do
          if wanted[host] then return redis.error_reply('HOST ' .. host .. ' ' .. all[i]) end
        end
      end
    end
  end
end
local revision = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], ARGV[1], '{"revision":' .. revision .. ',' .. ARGV[2])
redis.call('PUBLISH', ARGV[4], revision .. ' ' .. ARGV[1])
return revision
`

// KEYS: epoch, revision, services. ARGV: new epoch, channel, then name and record pairs.
// Does nothing (returns 0) when another node seeded first.
const SEED_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[3])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], '{"revision":1,' .. ARGV[i + 1])
end
redis.call('SET', KEYS[2], 1)
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], 1)
return 1
`

// KEYS: services. ARGV: revision. Deletes the tombstones of that revision or older; returns how
// many. An unreadable record is no tombstone: it is kept.
const PRUNE_SCRIPT = `
local all = redis.call('HGETALL', KEYS[1])
local pruned = 0
for i = 1, #all, 2 do
  local ok, record = pcall(cjson.decode, all[i + 1])
  if ok and type(record) == 'table' and record.removed == true and type(record.revision) == 'number' and record.revision <= tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], all[i])
    pruned = pruned + 1
  end
end
return pruned
`

export class SharedState {
  readonly channel: string
  readonly #redis: Redis
  readonly #keys: [epoch: string, revision: string, services: string]
  readonly #label: string
  readonly #badRecords = new UnreadableRecords('unreadable service record in redis: not applied; deploy or remove the service to replace it', 'error')
  /** What this node last read in full; a different epoch later means Redis lost its data meanwhile. */
  #lastRead: SharedHead = { epoch: null, revision: 0 }

  constructor(redis: Redis, prefix: string, label: string) {
    this.#redis = redis
    this.#keys = [`${prefix}epoch`, `${prefix}revision`, `${prefix}services`]
    this.channel = `${prefix}changes`
    this.#label = label
  }

  get lastRead(): SharedHead {
    return this.#lastRead
  }

  /** The keys of the head, for a caller that reads them in a pipeline of its own (see headFrom). */
  get headKeys(): [epoch: string, revision: string] {
    return [this.#keys[0], this.#keys[1]]
  }

  /**
   * The head from the values of its keys. A revision counter that is not a number throws: no
   * change can be ordered against it (INCR fails too) until someone sets it right.
   */
  headFrom(epoch: string | null, revision: string | null): SharedHead {
    return { epoch, revision: parseWith(REVISION_COUNTER, `redis record ${this.#keys[1]}`, revision, StateFileError) }
  }

  /** The cheap part, compared on every heartbeat. */
  async head(): Promise<SharedHead> {
    const [epoch, revision] = await this.#run('read', () => this.#redis.mget(...this.headKeys))
    return this.headFrom(epoch, revision)
  }

  /** Every record, read atomically with the head, which it remembers. */
  async read(): Promise<SharedRead> {
    const [epoch, revision, hash] = await this.#run('read', () =>
      replies(this.#redis.multi().get(this.#keys[0]).get(this.#keys[1]).hgetall(this.#keys[2]))) as [string | null, string | null, Record<string, string>]
    const head = this.headFrom(epoch, revision)
    const records = new Map<string, SharedRecord>()
    const unreadable = new Set<string>()
    for (const [name, text] of Object.entries(hash ?? {})) {
      const record = this.#parse(name, text)
      if (record) records.set(name, record)
      else unreadable.add(name)
    }
    this.#lastRead = head
    return { head, records, unreadable }
  }

  /** One service's record, read atomically with the epoch; undefined when missing or unreadable. */
  async readOne(name: string): Promise<{ epoch: string | null; record: SharedRecord | undefined }> {
    const [epoch, text] = await this.#run('read', () =>
      replies(this.#redis.multi().get(this.#keys[0]).hget(this.#keys[2], name))) as [string | null, string | null]
    return { epoch, record: text === null ? undefined : this.#parse(name, text) }
  }

  /** Records a deploy (`spec`) or removal (`undefined`) made through `origin`; returns its revision. */
  async commit(name: string, spec: ServiceSpec | undefined, origin: string): Promise<number> {
    const record = JSON.stringify(spec ? { origin, spec } : { origin, removed: true }).slice(1)
    const hosts = spec ? JSON.stringify(spec.hosts) : ''
    try {
      return Number(await this.#redis.eval(COMMIT_SCRIPT, 3, ...this.#keys, name, record, hosts, this.channel, this.#lastRead.epoch ?? ''))
    } catch (err) {
      throw commitError(err, this.#label)
    }
  }

  /**
   * Deletes the tombstones of removals every live node has read (`upTo`: the oldest revision a
   * live node has read). A node that comes back later reads everything and drops the services
   * it serves that Redis no longer has.
   */
  async pruneTombstones(upTo: number): Promise<number> {
    return Number(await this.#run('write', () => this.#redis.eval(PRUNE_SCRIPT, 1, this.#keys[2], upTo)))
  }

  /** Writes `services` as the whole state of an empty Redis. False if another node did first. */
  async seed(services: ServiceSpec[], origin: string): Promise<boolean> {
    const pairs = services.flatMap((spec) => [spec.name, JSON.stringify({ origin, spec }).slice(1)])
    const seeded = await this.#run('write', () => this.#redis.eval(SEED_SCRIPT, 3, ...this.#keys, randomUUID(), this.channel, ...pairs))
    return Number(seeded) === 1
  }

  /** The record of service `name`, or undefined when unreadable (logged, once per content). */
  #parse(name: string, text: string): SharedRecord | undefined {
    const where = recordName(this.#keys[2], name)
    return this.#badRecords.readAs(SERVICE_RECORD, where, text, (record) => {
      if (record.spec && record.spec.name !== name) {
        throw new StateFileError(`invalid redis record ${where} (spec.name): the service is named ${record.spec.name}`)
      }
      return record
    })
  }

  async #run<T>(what: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command()
    } catch (err) {
      throw new StateFileError(`cannot ${what} the state in redis ${this.#label}: ${oneLine(err)}`)
    }
  }
}

/** The replies of a transaction, or the first error among them. */
async function replies(transaction: ChainableCommander): Promise<unknown[]> {
  return ((await transaction.exec()) ?? []).map(([err, value]) => {
    if (err) throw err
    return value
  })
}

function commitError(err: unknown, label: string): Error {
  // Redis may put its generic ERR code before the script's own reply.
  const message = oneLine(err).replace(/^ERR /, '')
  const host = /^HOST (\S+) (\S+)/.exec(message)
  if (host) return hostTakenError(host[1], host[2])
  const hostless = /^HOSTLESS (\S+)/.exec(message)
  if (hostless) return defaultServiceTakenError(hostless[1])
  if (message.startsWith('EPOCH')) {
    return new StateFileError(`redis ${label} lost its data since this node last read it; the state is being written back, run the command again`)
  }
  return new StateFileError(`cannot save the state to redis ${label}: ${oneLine(err)}`)
}
