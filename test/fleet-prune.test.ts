/**
 * Removed services leave tombstones in Redis so that a node that missed the removal learns of
 * it. Once every live node has read past them they are pruned; a node that was away meanwhile
 * finds the service gone from Redis and drops it too.
 */
import type { ListResponse } from '../src/control/protocol'
import { getBody, request, startBackend, startProxy, startRedis, waitUntil, type Proxy } from './helpers'

/** Pruning runs this often in these tests (60 s by default). */
const PRUNE_INTERVAL = '500ms'
/** A stopped node stops heartbeating and counts as gone after 5 s; this bounds the waits around it. */
const NODE_GONE_BOUND_MS = 15_000

function startNode(redisUrl: string, name: string): Promise<Proxy> {
  return startProxy({ workers: 1, args: ['--redis-url', redisUrl, '--node-name', name], env: { MPROXY_FLEET_PRUNE_INTERVAL: PRUNE_INTERVAL } })
}

describe('tombstones of removed services', () => {
  it('are pruned once every live node has read them, and a node that was away drops the service', async () => {
    const redis = await startRedis()
    const backend = await startBackend()
    const n1 = await startNode(redis.url, 'n1')
    const n2 = await startNode(redis.url, 'n2')
    await n1.deploy([backend.address], ['--host', 'keep.test'])
    await n1.deploy([backend.address], ['--host', 'gone.test'])
    await waitUntil(async () => (await request(n2.port, { host: 'gone.test' })).status === 200, 5_000, 'n2 to serve gone.test')

    // n2 is away (stopped, not heartbeating) while gone.test is removed and its tombstone pruned.
    n2.proc.kill('SIGSTOP')
    const n2Live = async () => (JSON.parse((await n1.cli(['list', '--json'])).stdout) as ListResponse).nodes?.find((node) => node.name === 'n2')?.live
    await waitUntil(async () => (await n2Live()) === false, NODE_GONE_BOUND_MS, 'n2 to count as gone')
    expect((await n1.cli(['remove', 'gone.test'])).code).toBe(0)
    await n1.waitForLog((line) => line.msg === 'pruned removed services from redis', NODE_GONE_BOUND_MS)
    n2.proc.kill('SIGCONT')

    await waitUntil(async () => (await request(n2.port, { host: 'gone.test' })).status === 404, NODE_GONE_BOUND_MS, 'n2 to drop gone.test')
    expect(await getBody(n2.port, { host: 'keep.test' })).toBe(backend.name)
    expect((await n2.list()).services.map((service) => service.name)).toEqual(['keep.test'])
  })
})
