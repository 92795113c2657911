import type http from 'node:http'
import {
  delayMs, errorLines, makeTestCertificate, openUpgrade, request, startBackend, startProxy, timed, waitUntil,
  type Backend, type Proxy, type Response, type Timed,
} from './helpers'
import type { ServiceStatus } from '../src/control/protocol'

/** A request held by a pause must not be answered for at least this long when nothing ends the pause. */
const HOLD_CHECK_MS = 300
/** How long the request in flight during a pause or stop takes: long enough that the command reaches the proxy while it runs, on a loaded machine too. */
const SLOW_REQUEST_MS = 4_000
/** Short enough to wait for in a test, long enough to tell apart from an immediate answer. */
const MAX_PAUSE_MS = 400

/** The default backend, recording when each request other than a health check arrived. */
async function recordingBackend(): Promise<Backend & { arrivals: Array<{ path: string; at: number }> }> {
  const arrivals: Array<{ path: string; at: number }> = []
  const backend = await startBackend((req: http.IncomingMessage, res: http.ServerResponse, self: Backend) => {
    if (req.url === '/up') return void res.end('ok')
    arrivals.push({ path: req.url ?? '', at: Date.now() })
    if (req.url?.startsWith('/slow')) return void setTimeout(() => res.end(`${self.name} slow`), SLOW_REQUEST_MS)
    res.end(self.name)
  })
  return Object.assign(backend, { arrivals })
}

async function statusOf(proxy: Proxy, name: string): Promise<ServiceStatus> {
  const service = (await proxy.list()).services.find((s) => s.name === name)
  if (!service) throw new Error(`service ${name} not listed`)
  return service
}

async function cliOk(proxy: Proxy, args: string[]): Promise<string> {
  const result = await proxy.cli(args)
  if (result.code !== 0) throw new Error(`${args.join(' ')} failed (${result.code}): ${result.stdout}${result.stderr}`)
  return result.stdout
}

/**
 * Sends a request to the paused service `web` and waits until a worker holds it; `held` settles
 * with its answer (in an object: an async function would wait for it).
 */
async function holdOne(proxy: Proxy): Promise<{ held: Promise<Timed<Response>> }> {
  const held = timed(request(proxy.port, { path: '/held' }))
  await waitUntil(async () => (await statusOf(proxy, 'web')).held === 1, 5_000, 'the request to be held')
  return { held }
}

describe('mproxy stop and resume', () => {
  it('answers the 503 page with the escaped message on every worker, the health check 200, and the app again after resume', async () => {
    const backend = await recordingBackend()
    const proxy = await startProxy({ workers: 2 })
    await proxy.deploy([backend.address], ['--name', 'web'])

    const stopped = await cliOk(proxy, ['stop', 'web', '--message', '<b>Back</b> at 5 & "soon"'])
    expect(stopped).toMatch(/^web is stopped on 2 workers: new requests get the 503 page/m)
    expect(stopped).toMatch(/^stopped web in /m)
    for (let i = 0; i < 4; i++) {
      const page = await request(proxy.port, { path: '/anything' })
      expect(page.status).toBe(503)
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
      expect(page.body).toContain('<title>503 — Service Temporarily Unavailable</title>')
      expect(page.body).toContain('&lt;b&gt;Back&lt;/b&gt; at 5 &amp; &quot;soon&quot;')
      expect(page.body).not.toContain('<b>Back')
    }
    for (const [method, path] of [['GET', '/up'], ['HEAD', '/up'], ['GET', '/up?probe=1']]) {
      const health = await request(proxy.port, { method, path })
      expect([method, path, health.status, health.body]).toEqual([method, path, 200, ''])
    }
    expect((await request(proxy.port, { method: 'POST', path: '/up' })).status).toBe(503)
    const upgrade = openUpgrade(proxy.port, { path: '/cable' })
    await expect(upgrade).rejects.toThrow(/503/)
    expect(backend.arrivals).toEqual([])
    expect(await statusOf(proxy, 'web')).toMatchObject({ state: 'stopped', stopMessage: '<b>Back</b> at 5 & "soon"', held: 0 })
    expect((await cliOk(proxy, ['list']))).toMatch(/^web\s+\*\s+stopped\s+no\s/m)

    expect(await cliOk(proxy, ['resume', 'web'])).toMatch(/^resumed web in /m)
    expect((await request(proxy.port, { path: '/again' })).body).toBe(backend.name)
    expect((await statusOf(proxy, 'web')).state).toBe('running')
    expect(await cliOk(proxy, ['resume', 'web'])).toMatch(/^web is already running$/m)

    await cliOk(proxy, ['stop', 'web'])
    expect((await request(proxy.port)).body).toContain('The service is down for maintenance')
  })

  it('answers the health check of a service under a path prefix, after stripping it', async () => {
    const backend = await recordingBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'app.test', '--path-prefix', '/api', '--name', 'api'])
    await cliOk(proxy, ['stop', '--host', 'app.test'])

    expect((await request(proxy.port, { host: 'app.test', path: '/api/up' })).status).toBe(200)
    expect((await request(proxy.port, { host: 'app.test', path: '/api/users' })).status).toBe(503)
    expect((await request(proxy.port, { host: 'app.test', path: '/up' })).status).toBe(404)
  })

  it('still redirects plain HTTP to HTTPS while stopped', async () => {
    const certificate = makeTestCertificate(['app.test'])
    const backend = await recordingBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'app.test', '--tls-certificate-path', certificate.certFile, '--tls-private-key-path', certificate.keyFile])
    await cliOk(proxy, ['stop', 'app.test'])

    const redirect = await request(proxy.port, { host: 'app.test', path: '/page?x=1' })
    expect([redirect.status, redirect.headers.location]).toEqual([301, `https://app.test:${proxy.httpsPort}/page?x=1`])
    const page = await request(proxy.httpsPort, { host: 'app.test', path: '/page', tls: { ca: certificate.ca, servername: 'app.test' } })
    expect(page.status).toBe(503)
  })

  it('refuses unknown services and bad durations with one line, changing nothing', async () => {
    const backend = await recordingBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--name', 'web'])

    const cases: Array<[string[], string]> = [
      [['stop', 'nope'], 'Error: service nope not found'],
      [['pause', 'web', '--max-pause', '30'], 'Error: invalid max pause "30": missing unit (use e.g. 30s or 30ms)'],
      [['pause', 'web', '--max-pause', '0'], 'Error: invalid max pause: must be a positive duration'],
      [['stop'], 'Error: give a service name or --host HOST'],
    ]
    for (const [args, error] of cases) {
      const result = await proxy.cli(args)
      expect([args, result.code, errorLines(result.stderr)]).toEqual([args, 1, [error]])
    }
    expect((await statusOf(proxy, 'web')).state).toBe('running')
  })
})

describe('mproxy pause', () => {
  it('holds a new request until resume, then proxies it', async () => {
    const backend = await recordingBackend()
    const proxy = await startProxy({ workers: 2 })
    await proxy.deploy([backend.address], ['--name', 'web'])
    expect(await cliOk(proxy, ['pause', 'web'])).toMatch(/^web is paused on 2 workers: new requests are held for up to 30s$/m)

    const { held } = await holdOne(proxy)
    expect(await cliOk(proxy, ['list'])).toMatch(/^web\s+\*\s+paused \(1 held\)\s/m)
    await delayMs(HOLD_CHECK_MS)
    expect(backend.arrivals).toEqual([])
    const resumedAt = Date.now()
    await cliOk(proxy, ['resume', 'web'])

    const { value, at } = await held
    expect([value?.status, value?.body]).toEqual([200, backend.name])
    expect(at).toBeGreaterThanOrEqual(resumedAt)
    expect(backend.arrivals).toEqual([{ path: '/held', at: expect.any(Number) }])
    expect(backend.arrivals[0].at).toBeGreaterThanOrEqual(resumedAt)
    await waitUntil(async () => (await statusOf(proxy, 'web')).held === 0, 5_000, 'the held count to drop')
  })

  it('answers 504 to a request held past --max-pause', async () => {
    const backend = await recordingBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--name', 'web'])
    await cliOk(proxy, ['pause', 'web', '--max-pause', `${MAX_PAUSE_MS}ms`])

    const startedAt = Date.now()
    const expired = await request(proxy.port, { path: '/held' })
    expect(expired.status).toBe(504)
    expect(expired.body).toContain('<title>504 — Gateway Timeout</title>')
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(MAX_PAUSE_MS)
    expect(backend.arrivals).toEqual([])
    await proxy.waitForLog((line) => line.msg === 'held requests reached the max pause' && line.service === 'web')
    expect((await statusOf(proxy, 'web')).maxPauseMs).toBe(MAX_PAUSE_MS)
  })

  it('answers held requests with the 503 page as soon as the service is stopped', async () => {
    const backend = await recordingBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--name', 'web'])
    await cliOk(proxy, ['pause', 'web'])

    const { held } = await holdOne(proxy)
    const stoppingAt = Date.now()
    await cliOk(proxy, ['stop', 'web', '--message', 'Gone to lunch'])

    const { value, at } = await held
    expect(value?.status).toBe(503)
    expect(value?.body).toContain('Gone to lunch')
    expect(at - stoppingAt).toBeLessThan(5_000)
    expect(backend.arrivals).toEqual([])
  })

  it.each(['pause', 'stop'])('%s waits for the request in flight to complete', async (command) => {
    const backend = await recordingBackend()
    const proxy = await startProxy({ workers: 2 })
    await proxy.deploy([backend.address], ['--name', 'web'])

    const slow = timed(request(proxy.port, { path: '/slow' }))
    await waitUntil(() => backend.arrivals.length === 1, 5_000, 'the slow request to reach the app')
    const result = await timed(cliOk(proxy, [command, 'web']))
    const response = await slow

    expect([response.value?.status, response.value?.body]).toEqual([200, `${backend.name} slow`])
    expect(result.value).toMatch(/^draining 127\.0\.0\.1:\d+: 1 request in flight$/m)
    expect(result.value).toMatch(/^drained web after /m)
    expect(result.at).toBeGreaterThanOrEqual(response.at)
  })
})

describe('a paused or stopped service', () => {
  it('stays so after a restart and after a deploy', async () => {
    const [first, second] = [await recordingBackend(), await recordingBackend()]
    let proxy = await startProxy({ workers: 1 })
    const { stateDir } = proxy
    await proxy.deploy([first.address], ['--name', 'web'])
    await cliOk(proxy, ['stop', 'web', '--message', 'Upgrading'])
    await proxy.stop()

    proxy = await startProxy({ workers: 1, stateDir })
    const page = await request(proxy.port)
    expect([page.status, page.body.includes('Upgrading')]).toEqual([503, true])
    expect((await request(proxy.port, { path: '/up' })).status).toBe(200)

    const deployed = await proxy.deploy([second.address], ['--name', 'web'])
    expect(deployed.stdout).toMatch(/^web is stopped and stays stopped after this deploy \(mproxy resume web serves it again\)$/m)
    expect((await request(proxy.port)).status).toBe(503)
    expect(await statusOf(proxy, 'web')).toMatchObject({ state: 'stopped', stopMessage: 'Upgrading', targets: [{ address: second.address }] })

    await cliOk(proxy, ['pause', 'web', '--max-pause', '2s'])
    await proxy.stop()
    proxy = await startProxy({ workers: 1, stateDir })
    expect(await statusOf(proxy, 'web')).toMatchObject({ state: 'paused', stopMessage: '', maxPauseMs: 2_000 })
    await cliOk(proxy, ['resume', 'web'])
    expect((await request(proxy.port)).body).toBe(second.name)
    expect(first.arrivals).toEqual([])
  })

  it('can be removed', async () => {
    const backend = await recordingBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--name', 'web'])
    await cliOk(proxy, ['pause', 'web'])

    const { held } = await holdOne(proxy)
    expect(await cliOk(proxy, ['remove', 'web'])).toMatch(/^removed web$/m)
    expect((await held).value?.status).toBe(503)
    expect((await proxy.list()).services).toEqual([])
  })
})
