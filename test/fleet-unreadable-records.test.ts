/**
 * Records in Redis that do not pass their schema (typed in by hand, cut short, written by some
 * other program) are logged, naming their key, and never stop a node from starting, deploying
 * or serving. What cannot be read is not deleted either: a service whose record is unreadable is
 * served as before, and the next deploy of it replaces the record.
 */
import { LETS_ENCRYPT_DIRECTORY } from '../src/options'
import { createRedisClient } from '../src/primary/fleet/redis-client'
import { getBody, onCleanup, request, startBackend, startProxy, startRedis, waitUntil, type LogLine, type Proxy, type RedisServer } from './helpers'

/** Redis, three nodes and a restart: more than the default. */
const TEST_TIMEOUT_MS = 90_000
/** A node notices a raised revision within two heartbeats (1 s each); this bounds it on a busy machine. */
const CATCH_UP_TIMEOUT_MS = 10_000

function startNode(redis: RedisServer, name: string, stateDir?: string): Promise<Proxy> {
  return startProxy({ workers: 1, stateDir, args: ['--redis-url', redis.url, '--node-name', name] })
}

/** A warning or error line `msg` about the record named `record`. */
const about = (msg: string, record: string) => (line: LogLine): boolean => line.msg === msg && line.record === record

describe('a fleet with unreadable records in Redis', () => {
  jest.setTimeout(TEST_TIMEOUT_MS)

  it('starts, deploys and serves, logs each bad record by its key, and keeps serving what it cannot read', async () => {
    const redis = await startRedis()
    const [a, b] = [await startBackend(), await startBackend()]
    const n1 = await startNode(redis, 'n1')
    const n2 = await startNode(redis, 'n2')
    await n1.deploy([a.address], ['--host', 'keep.test'])

    const client = createRedisClient(redis.url)
    onCleanup(() => client.disconnect())
    await client.connect()
    await client.multi()
      // keep.test's record cut short, and the revision raised so that every node reads it.
      .hset('mproxy:services', 'keep.test', '{"revision":3,"origin":"n1","spec":{"name":"keep.te')
      .incr('mproxy:revision')
      .hset('mproxy:nodes', 'ghost', 'not json')
      .hset('mproxy:applied:app.test', 'ghost', '{"revision":')
      .hset('mproxy:certificates', 'app.test', JSON.stringify({ cert: 'not a certificate', key: '' }))
      .hset('mproxy:acme-accounts', LETS_ENCRYPT_DIRECTORY, '{}')
      .exec()
    const unreadableService = about('unreadable service record in redis: not applied; deploy or remove the service to replace it', 'mproxy:services field keep.test')
    for (const node of [n1, n2]) expect(await node.waitForLog(unreadableService, CATCH_UP_TIMEOUT_MS)).toMatchObject({ level: 'error' })

    // A node started now, on an empty state dir, reads every kind of bad record at start.
    const n3 = await startNode(redis, 'n3')
    expect(n3.logs.find(unreadableService)).toBeDefined()
    expect(n3.logs.find(about('unreadable certificate in redis: taken as missing', 'mproxy:certificates field app.test'))).toMatchObject({
      level: 'warn', error: expect.stringMatching(/^invalid redis record mproxy:certificates field app\.test \(cert\): /),
    })
    expect(n3.logs.find(about("unreadable acme account in redis: replaced by this node's", `mproxy:acme-accounts field ${LETS_ENCRYPT_DIRECTORY}`))).toBeDefined()
    expect(n3.logs.find((line) => line.msg === 'not serving a service unreadable in redis: no local copy of it')).toMatchObject({ service: 'keep.test' })

    const deployed = await n1.deploy([b.address], ['--host', 'app.test'])

    expect(deployed.stdout).toMatch(/^node n2: switched and drained after \S+$/m)
    expect(deployed.stdout).toMatch(/^node n3: switched and drained after \S+$/m)
    expect(n1.logs.find(about('unreadable report in redis: taken as not reported yet', 'mproxy:applied:app.test field ghost'))).toBeDefined()
    for (const node of [n1, n2, n3]) expect(await getBody(node.port, { host: 'app.test' })).toBe(b.name)
    for (const node of [n1, n2]) expect(await getBody(node.port, { host: 'keep.test' })).toBe(a.name)
    expect((await request(n3.port, { host: 'keep.test' })).status).toBe(404)

    const { nodes } = await n1.list()
    expect(nodes?.map((node) => node.name)).toEqual(['n1', 'n2', 'n3'])
    expect(n1.logs.find(about('unreadable node record in redis: ignored', 'mproxy:nodes field ghost'))).toBeDefined()
    expect(await client.hget('mproxy:nodes', 'ghost')).toBe('not json')

    // n2 restarted: its local copy stands in for the record it cannot read.
    expect(await n2.stop()).toBe(0)
    const n2Again = await startNode(redis, 'n2', n2.stateDir)
    expect(n2Again.logs.find((line) => line.msg === 'serving the local copy of a service unreadable in redis')).toMatchObject({ service: 'keep.test' })
    expect(await getBody(n2Again.port, { host: 'keep.test' })).toBe(a.name)

    // Deployed again, keep.test has a readable record, which every node applies.
    await n1.deploy([a.address], ['--host', 'keep.test'])
    for (const node of [n1, n2Again, n3]) expect(await getBody(node.port, { host: 'keep.test' })).toBe(a.name)
  })
})
