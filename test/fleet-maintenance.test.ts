/**
 * Pause, stop and resume are saved in Redis like deploys: made through one node, every node of
 * the fleet applies them, and the command returns once they have.
 */
import type { ListResponse } from '../src/control/protocol'
import { getBody, request, startBackend, startProxy, startRedis, timed, waitUntil, type Proxy } from './helpers'

/** Redis, two nodes and the CLI runs take longer than the default test timeout. */
const FLEET_TEST_TIMEOUT_MS = 90_000
/** How long a node may take to be listed live by another (its first heartbeat). */
const LIVE_TIMEOUT_MS = 10_000

function startNode(redisUrl: string, name: string): Promise<Proxy> {
  return startProxy({ workers: 1, args: ['--redis-url', redisUrl, '--node-name', name] })
}

async function cliOk(node: Proxy, args: string[]): Promise<string> {
  const result = await node.cli(args)
  if (result.code !== 0) throw new Error(`${args.join(' ')} failed (${result.code}): ${result.stdout}${result.stderr}`)
  return result.stdout
}

describe('fleet: pause, stop and resume', () => {
  jest.setTimeout(FLEET_TEST_TIMEOUT_MS)

  it('stop and resume through n1 apply on n2 by the time they return', async () => {
    const redis = await startRedis()
    const backend = await startBackend()
    const [n1, n2] = [await startNode(redis.url, 'n1'), await startNode(redis.url, 'n2')]
    await waitUntil(async () => (JSON.parse(await cliOk(n1, ['list', '--json'])) as ListResponse).nodes?.some((node) => node.name === 'n2' && node.live),
      LIVE_TIMEOUT_MS, 'n1 to see n2 live')
    await n1.deploy([backend.address], ['--host', 'app.test', '--name', 'web'])
    expect(await getBody(n2.port, { host: 'app.test' })).toBe(backend.name)

    const stopped = await cliOk(n1, ['stop', 'web', '--message', 'Fleet <maintenance>'])
    expect(stopped).toMatch(/^node n2: stopped, drained after \S+$/m)
    const page = await request(n2.port, { host: 'app.test' })
    expect([page.status, page.body.includes('Fleet &lt;maintenance&gt;')]).toEqual([503, true])
    expect((await request(n2.port, { host: 'app.test', path: '/up' })).status).toBe(200)
    expect((await n2.list()).services[0]).toMatchObject({ state: 'stopped', stopMessage: 'Fleet <maintenance>' })

    expect(await cliOk(n1, ['resume', 'web'])).toMatch(/^node n2: resumed$/m)
    expect(await getBody(n2.port, { host: 'app.test' })).toBe(backend.name)

    // A pause through n1 holds requests on n2 until a resume through n1.
    await cliOk(n1, ['pause', 'web'])
    const held = timed(request(n2.port, { host: 'app.test', path: '/held' }))
    await waitUntil(async () => (await n2.list()).services[0].held === 1, LIVE_TIMEOUT_MS, 'n2 to hold the request')
    const before = backend.appRequests
    await cliOk(n1, ['resume', 'web'])
    expect((await held).value?.body).toBe(backend.name)
    expect(backend.appRequests).toBe(before + 1)
  })
})
