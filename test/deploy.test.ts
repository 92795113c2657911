import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  REFUSED_TARGET,
  collectBodies,
  errorLines,
  getBody,
  request,
  startBackend,
  startProxy,
  waitUntil,
  type Proxy,
} from './helpers'

/** Deploy timeout for deploys that are expected to fail: short, so the tests stay fast. */
const FAILING_DEPLOY_TIMEOUT = '1s'
/** Upper bound for a failing deploy with a 1 s deploy timeout: the timeout plus CLI start-up and slack. */
const FAILING_DEPLOY_MAX_MS = 5_000

function readState(proxy: Proxy): string | undefined {
  const file = path.join(proxy.stateDir, 'state.json')
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined
}

describe('deploy', () => {
  it('routes requests to the deployed target once deploy returns', async () => {
    const backend = await startBackend()
    const proxy = await startProxy()

    const result = await proxy.deploy([backend.address])

    expect(result.code).toBe(0)
    expect(await getBody(proxy.port)).toBe(backend.name)
  })

  it('applies a new health check on a redeploy of the same target', async () => {
    const probed: string[] = []
    const backend = await startBackend((req, res) => {
      if (req.headers['user-agent'] === 'mproxy-health-check') probed.push(req.url ?? '')
      res.end('ok')
    })
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--health-check-path', '/up'])

    const result = await proxy.deploy([backend.address], ['--health-check-path', '/ready'])

    expect(result.stdout).toMatch(/already live for default: applied the new options/)
    const seen = probed.length
    await waitUntil(() => probed.slice(seen).filter((url) => url === '/ready').length >= 3, 5_000, 'probes of the new path')
    const after = probed.length
    await waitUntil(() => probed.length >= after + 3, 5_000, 'more probes')
    expect(probed.slice(after)).not.toContain('/up')
    expect((await proxy.list()).services[0].healthCheck.path).toBe('/ready')
  })

  it('sends a deploy whose hosts all belong to one service to that service, whatever their order', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([a.address], ['--host', 'one.test', '--host', 'two.test'])

    const result = await proxy.deploy([b.address], ['--host', 'two.test', '--host', 'one.test'])

    expect(result.code).toBe(0)
    const { services } = await proxy.list()
    expect(services.map((s) => [s.name, s.hosts, s.targets.map((t) => t.address)])).toEqual([['one.test', ['two.test', 'one.test'], [b.address]]])
    expect(await getBody(proxy.port, { host: 'one.test' })).toBe(b.name)
  })

  it('prints each progress line once while one target waits for another', async () => {
    // Healthy from its fourth probe on, however slowly the machine runs.
    let probes = 0
    const fast = await startBackend()
    const slow = await startBackend((req, res) => {
      if (req.url === '/up' && ++probes <= 3) res.statusCode = 503
      res.end('slow')
    })
    const proxy = await startProxy({ workers: 1 })

    const result = await proxy.deploy([fast.address, slow.address])

    const lines = result.stdout.split('\n').filter((line) => line !== '')
    expect(lines.filter((line) => line.startsWith(`${fast.address} healthy after`))).toHaveLength(1)
    expect(lines.filter((line) => line === `${slow.address} not healthy yet: status 503`)).toHaveLength(1)
    expect(new Set(lines).size).toBe(lines.length)
  })

  it('switches to the new target on redeploy', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await startProxy()
    await proxy.deploy([a.address])
    expect(await getBody(proxy.port)).toBe(a.name)

    await proxy.deploy([b.address])

    expect(await collectBodies(proxy.port, 10)).toEqual(new Map([[b.name, 10]]))
    const { services } = await proxy.list()
    expect(services.map((s) => s.targets.map((t) => t.address))).toEqual([[b.address]])
  })

  it.each([
    ['answers its health check with 503', async () => (await startBackend((req, res) => res.writeHead(req.url === '/up' ? 503 : 200).end('new'))).address, /503/],
    ['refuses connections', async () => REFUSED_TARGET, /refused/i],
  ])('fails with the reason when the new target %s, and keeps the old target', async (_case, makeTarget, reason) => {
    const old = await startBackend()
    const proxy = await startProxy()
    await proxy.deploy([old.address])
    const listBefore = await proxy.list()
    const stateBefore = readState(proxy)
    const target = await makeTarget()

    const result = await proxy.cli(['deploy', target, '--deploy-timeout', FAILING_DEPLOY_TIMEOUT, '--health-check-interval', '100ms'])

    expect(result.code).toBe(1)
    expect(result.durationMs).toBeLessThan(FAILING_DEPLOY_MAX_MS)
    const lines = errorLines(result.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(reason)
    expect(await getBody(proxy.port)).toBe(old.name)
    expect(await proxy.list()).toEqual(listBefore)
    expect(readState(proxy)).toBe(stateBefore)
  })

  it('skips health checks with --force', async () => {
    const unhealthy = await startBackend((req, res) => res.writeHead(req.url === '/up' ? 503 : 200).end('forced'))
    const proxy = await startProxy()

    const result = await proxy.cli(['deploy', unhealthy.address, '--force', '--deploy-timeout', FAILING_DEPLOY_TIMEOUT])

    expect(result.code).toBe(0)
    expect(await getBody(proxy.port)).toBe('forced')
  })

  it('treats redeploying the live target as a no-op that does not wait for in-flight requests', async () => {
    const backend = await startBackend()
    const proxy = await startProxy()
    await proxy.deploy([backend.address])
    const listBefore = await proxy.list()
    const slow = request(proxy.port, { path: '/slow?ms=6000' })
    await waitUntil(() => backend.appRequests >= 1, undefined, 'the slow request to reach the backend')

    const result = await proxy.deploy([backend.address])

    // Well under the slow request's 6 s, whatever a loaded machine adds to the CLI's own start.
    expect(result.durationMs).toBeLessThan(4_000)
    expect((await proxy.list()).services.map((s) => s.targets.map((t) => t.address))).toEqual(
      listBefore.services.map((s) => s.targets.map((t) => t.address)),
    )
    expect(await getBody(proxy.port)).toBe(backend.name)
    expect(await slow).toMatchObject({ status: 200, body: backend.name })
  })

  it('balances requests round-robin over several targets', async () => {
    const backends = [await startBackend(), await startBackend(), await startBackend()]
    const proxy = await startProxy()
    await proxy.deploy(backends.map((b) => b.address))

    const bodies = await collectBodies(proxy.port, 30)

    for (const backend of backends) expect(bodies.get(backend.name) ?? 0).toBeGreaterThanOrEqual(5)
    const { services } = await proxy.list()
    expect(services[0].targets.map((t) => t.address).sort()).toEqual(backends.map((b) => b.address).sort())
    expect(services[0].targets.every((t) => t.health === 'healthy')).toBe(true)
  })
})

describe('deploy and remove refuse bad input', () => {
  let proxy: Proxy
  let backendAddress: string
  beforeAll(async () => {
    const backend = await startBackend()
    backendAddress = backend.address
    proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'app.test'])
  })

  it.each<[string, () => string[], RegExp]>([
    ['a target without port', () => ['deploy', 'nohost'], /nohost/],
    ['a target port out of range', () => ['deploy', 'web:99999'], /99999|port/],
    ['a host with a space', () => ['deploy', backendAddress, '--host', 'bad host'], /bad host|host/],
    ['a duration without unit', () => ['deploy', backendAddress, '--deploy-timeout', '30'], /30|unit|duration/],
    ['a duration no timer holds', () => ['deploy', backendAddress, '--drain-timeout', '600h'], /drain timeout "600h": at most/],
    ['an unknown flag', () => ['deploy', backendAddress, '--bogus-flag'], /bogus/],
    ['removing an unknown service', () => ['remove', 'no-such-service'], /no-such-service|not found/i],
    ['removing an unknown host', () => ['remove', '--host', 'nobody.test'], /nobody\.test|not found/i],
  ])('%s: exit 1, one Error line, nothing changes', async (_case, args, mention) => {
    const before = await proxy.list()

    const result = await proxy.cli(args())

    expect(result.code).toBe(1)
    expect(result.stderr.trimStart()).toMatch(/^Error: /)
    const lines = errorLines(result.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(mention)
    expect(result.stderr).not.toMatch(/^\s+at /m)
    expect(await proxy.list()).toEqual(before)
  })
})
