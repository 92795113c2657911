import type * as http from 'node:http'
import {
  SHORT_TIMEOUT_MS,
  getBody,
  openUpgrade,
  request,
  startBackend,
  startProxy,
  waitUntil,
  type Proxy,
} from './helpers'

/** Sum of in-flight counts that `list --json` reports for one target. */
async function inflightOf(proxy: Proxy, address: string): Promise<number> {
  const { services } = await proxy.list()
  return services.flatMap((s) => s.targets).filter((t) => t.address === address).reduce((sum, t) => sum + t.inflight, 0)
}

describe('forwarded headers', () => {
  it('sends Host unchanged and sets X-Forwarded-For/-Proto/-Host, replacing client-supplied values', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'app.test'])

    const res = await request(proxy.port, {
      host: 'app.test:8080',
      path: '/headers',
      headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.test' },
    })
    const seen = JSON.parse(res.body) as http.IncomingHttpHeaders

    expect(res.status).toBe(200)
    expect(seen.host).toBe('app.test:8080')
    expect(seen['x-forwarded-for']).toBe('127.0.0.1')
    expect(seen['x-forwarded-proto']).toBe('http')
    expect(seen['x-forwarded-host']).toBe('app.test:8080')
    expect(seen['x-request-id']).toEqual(expect.any(String))
  })

  it('appends to a client-supplied X-Forwarded-For when the peer is a --trusted-proxy', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1, args: ['--trusted-proxy', '127.0.0.1'] })
    await proxy.deploy([backend.address])

    const res = await request(proxy.port, {
      path: '/headers',
      host: 'app.test',
      headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' },
    })
    const seen = JSON.parse(res.body) as http.IncomingHttpHeaders

    expect(seen['x-forwarded-for']).toBe('6.6.6.6, 127.0.0.1')
    expect(seen['x-forwarded-proto']).toBe('https')
  })

  it('strips hop-by-hop headers in both directions', async () => {
    const backend = await startBackend((req, res) => {
      res.setHeader('connection', 'x-backend-hop')
      res.setHeader('x-backend-hop', 'secret')
      res.setHeader('keep-alive', 'timeout=99')
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(req.headers))
    })
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address])

    const res = await request(proxy.port, {
      path: '/headers',
      headers: {
        connection: 'keep-alive, x-client-hop',
        'x-client-hop': 'secret',
        'keep-alive': 'timeout=99',
        'proxy-connection': 'keep-alive',
        'proxy-authorization': 'Basic c2VjcmV0',
        'x-end-to-end': 'kept',
      },
    })
    const seen = JSON.parse(res.body) as http.IncomingHttpHeaders

    expect(Object.keys(seen).filter((name) => ['x-client-hop', 'proxy-connection', 'proxy-authorization'].includes(name))).toEqual([])
    expect(seen['keep-alive']).not.toBe('timeout=99')
    expect(seen['x-end-to-end']).toBe('kept')
    expect(res.headers['x-backend-hop']).toBeUndefined()
    expect(res.headers['keep-alive']).not.toBe('timeout=99')
  })
})

describe('request log', () => {
  it('logs one line per proxied request with its service, target and outcome', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'app.test'])

    await request(proxy.port, { host: 'app.test', path: '/hello?x=1', method: 'POST', body: 'abc' })
    const line = await proxy.waitForLog((l) => l.msg === 'request' && String(l.path).startsWith('/hello'))

    expect(line).toMatchObject({
      level: 'info',
      service: 'app.test',
      target: backend.address,
      method: 'POST',
      host: 'app.test',
      status: 200,
      client: '127.0.0.1',
    })
    expect(line.duration).toEqual(expect.any(Number))
    expect(line.bytes).toEqual(expect.any(Number))
    expect(line.requestId).toEqual(expect.any(String))
  })

  it('writes none with --access-log false', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1, args: ['--access-log', 'false'] })
    await proxy.deploy([backend.address])

    expect((await request(proxy.port, { path: '/first' })).status).toBe(200)
    await proxy.stop()
    expect(proxy.logs.filter((line) => line.msg === 'request')).toEqual([])
  })
})

describe('upstream errors', () => {
  it('sends a request whose connection a dead target refused to another target, whatever its method', async () => {
    const [live, dead] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 1 })
    // Health checks a minute apart: the dead target stays routed for the whole test.
    const deployed = await proxy.cli(['deploy', live.address, dead.address, '--health-check-interval', '1m'])
    expect(deployed.code).toBe(0)
    await dead.close()

    const answers: Array<[number, string]> = []
    for (const method of ['GET', 'POST', 'DELETE', 'GET', 'POST', 'DELETE']) {
      const res = await request(proxy.port, { method })
      answers.push([res.status, res.body])
    }

    expect(answers).toEqual(Array(6).fill([200, live.name]))
    expect((await proxy.list()).services[0].targets.find((target) => target.address === dead.address)?.health).toBe('healthy')
  })

  it('answers 502 when the target has gone away', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address])
    await backend.close()

    const res = await request(proxy.port)

    expect(res.status).toBe(502)
  })

  it('answers 504 when the target is slower than --target-timeout', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--target-timeout', '500ms'])
    const started = Date.now()

    const res = await request(proxy.port, { path: '/slow?ms=5000' })

    expect(res.status).toBe(504)
    expect(Date.now() - started).toBeLessThan(3_000)
    // The proxy keeps serving.
    expect(await getBody(proxy.port)).toBe(backend.name)
  })

  it('frees the upstream request when the client aborts', async () => {
    let upstreamStarted = false
    let upstreamClosed = false
    const backend = await startBackend((req, res) => {
      if (req.url === '/up') return void res.end('ok')
      upstreamStarted = true
      res.once('close', () => (upstreamClosed = true))
      // Never answers.
    })
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address])
    const controller = new AbortController()
    const pending = request(proxy.port, { path: '/hang', signal: controller.signal }).catch((err: Error) => err)
    await waitUntil(() => upstreamStarted, undefined, 'the request to reach the backend')

    controller.abort()

    expect(await pending).toHaveProperty('name', 'AbortError')
    await waitUntil(() => upstreamClosed, SHORT_TIMEOUT_MS, 'the backend to see the upstream request close')
    await waitUntil(async () => (await inflightOf(proxy, backend.address)) === 0, SHORT_TIMEOUT_MS, 'the in-flight count back to 0')
    expect(await getBody(proxy.port, { path: '/up' })).toBe('ok')
  })
})

describe('WebSocket upgrades', () => {
  it('proxies the upgraded connection and counts it in flight while open', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'ws.test'])

    const ws = await openUpgrade(proxy.port, { host: 'ws.test' })

    expect(ws.response.statusCode).toBe(101)
    expect(await ws.echo('ping')).toBe('ping')
    await waitUntil(async () => (await inflightOf(proxy, backend.address)) === 1, SHORT_TIMEOUT_MS, 'the socket to count in flight')
    ws.socket.end()
    await ws.closed
    await waitUntil(async () => (await inflightOf(proxy, backend.address)) === 0, SHORT_TIMEOUT_MS, 'the count to drop when it closes')
  })

  it('closes the old target\'s upgraded connections right after a redeploy switches, and does not wait for them', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([a.address])
    const ws = await openUpgrade(proxy.port)
    expect(await ws.echo('one')).toBe('one')

    const startedAt = Date.now()
    await proxy.deploy([b.address], ['--drain-timeout', '20s'])
    await ws.closed
    expect(Date.now() - startedAt).toBeLessThan(10_000)
    // The client reconnects, to the new target.
    const again = await openUpgrade(proxy.port)
    expect(await again.echo('two')).toBe('two')
    expect(await getBody(proxy.port)).toBe(b.name)
  })

  it('with --drain-websockets, makes a redeploy wait until the upgraded connection closes', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([a.address])
    const ws = await openUpgrade(proxy.port)
    expect(await ws.echo('one')).toBe('one')
    let deployDone = false
    const deploy = proxy.deploy([b.address], ['--drain-timeout', '20s', '--drain-websockets']).finally(() => (deployDone = true))

    await waitUntil(async () => (await getBody(proxy.port)) === b.name, 10_000, 'traffic to switch to the new target')
    // The switched-away target is listed as draining, with the socket still counted.
    await waitUntil(async () => {
      const targets = (await proxy.list()).services.flatMap((service) => service.targets)
      return targets.some((target) => target.address === a.address && target.health === 'draining' && target.inflight === 1)
    }, SHORT_TIMEOUT_MS, 'the old target to drain with the socket in flight')
    expect(deployDone).toBe(false)
    // The old connection keeps working while it drains.
    expect(await ws.echo('two')).toBe('two')
    const closedAt = Date.now()
    ws.socket.end()
    await deploy

    expect(Date.now() - closedAt).toBeLessThan(3_000)
  })

  it('closes the upgraded connection when the drain timeout passes', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([a.address])
    const ws = await openUpgrade(proxy.port)
    expect(await ws.echo('one')).toBe('one')
    const started = Date.now()

    await proxy.deploy([b.address], ['--drain-timeout', '500ms'])

    expect(Date.now() - started).toBeLessThan(2_500)
    await waitUntil(() => ws.closed.then(() => true), SHORT_TIMEOUT_MS, 'the upgraded socket to be closed')
  })
})
