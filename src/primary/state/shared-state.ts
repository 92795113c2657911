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
 */
import { randomUUID } from 'node:crypto'
import type { ChainableCommander, Redis } from 'ioredis'
import { StateFileError, defaultServiceTakenError, hostTakenError, oneLine } from '../../errors'
import { normalizeServiceSpec, type ServiceSpec } from '../../options'

export interface SharedRecord {
  revision: number
  /** Name of the node the change was made through. */
  origin: string
  /** Undefined once the service is removed. */
  spec?: ServiceSpec
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
      local other = cjson.decode(all[i + 1])
      if other.spec then
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

// KEYS: services. ARGV: revision. Deletes the tombstones of that revision or older; returns how many.
const PRUNE_SCRIPT = `
local all = redis.call('HGETALL', KEYS[1])
local pruned = 0
for i = 1, #all, 2 do
  local record = cjson.decode(all[i + 1])
  if record.removed and record.revision <= tonumber(ARGV[1]) then
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

  /** The cheap part, compared on every heartbeat. */
  async head(): Promise<SharedHead> {
    const [epoch, revision] = await this.#run('read', () => this.#redis.mget(this.#keys[0], this.#keys[1]))
    return { epoch, revision: Number(revision ?? 0) }
  }

  /** Every record, read atomically with the head, which it remembers. */
  async read(): Promise<{ head: SharedHead; records: Map<string, SharedRecord> }> {
    const [epoch, revision, hash] = await this.#run('read', () =>
      replies(this.#redis.multi().get(this.#keys[0]).get(this.#keys[1]).hgetall(this.#keys[2]))) as [string | null, string | null, Record<string, string>]
    const records = new Map<string, SharedRecord>()
    for (const [name, text] of Object.entries(hash ?? {})) records.set(name, parseRecord(name, text, this.#label))
    this.#lastRead = { epoch, revision: Number(revision ?? 0) }
    return { head: this.#lastRead, records }
  }

  /** One service's record, read atomically with the epoch. */
  async readOne(name: string): Promise<{ epoch: string | null; record: SharedRecord | undefined }> {
    const [epoch, text] = await this.#run('read', () =>
      replies(this.#redis.multi().get(this.#keys[0]).hget(this.#keys[2], name))) as [string | null, string | null]
    return { epoch, record: text === null ? undefined : parseRecord(name, text, this.#label) }
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

function parseRecord(name: string, text: string, label: string): SharedRecord {
  try {
    const data = JSON.parse(text) as SharedRecord & { removed?: boolean }
    if (!Number.isInteger(data.revision)) throw new Error('no revision')
    return { revision: data.revision, origin: String(data.origin), spec: data.spec ? normalizeServiceSpec(data.spec) : undefined }
  } catch (err) {
    throw new StateFileError(`service ${name} in redis ${label} is invalid: ${oneLine(err)}`)
  }
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
