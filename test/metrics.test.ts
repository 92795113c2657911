import type http from 'node:http'
import {
  PROXY_START_TIMEOUT_MS, defaultHandler, errorLines, makeStateDir, makeTestCertificate, openUpgrade, request, runCli, startBackend, startProxy, startRedis, waitUntil,
  type Backend, type Proxy,
} from './helpers'

const REQUESTS = 20
const SLOW_MS = 1_500

/** The default upstream, plus `/reset`, which breaks the connection instead of answering. */
function handler(req: http.IncomingMessage, res: http.ServerResponse, backend: Backend): void {
  if (req.url === '/reset') req.socket.destroy()
  else defaultHandler(req, res, backend)
}

/** Starts a proxy with metrics on a port the system picks, and reads that port back. */
async function startWithMetrics(workers = 2, args: string[] = []): Promise<{ proxy: Proxy; metricsPort: number }> {
  const proxy = await startProxy({ workers, args: ['--metrics-port', 'auto', ...args] })
  const { metricsPort } = await proxy.status()
  if (!metricsPort) throw new Error('status has no metricsPort')
  const listening = await proxy.waitForLog((line) => line.msg === 'listening')
  expect(listening.metrics).toBe(metricsPort)
  return { proxy, metricsPort }
}

/** GET /metrics, as `name{labels}` → value. */
async function scrape(port: number): Promise<Map<string, number>> {
  const res = await request(port, { path: '/metrics' })
  expect(res.status).toBe(200)
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
  const series = new Map<string, number>()
  for (const line of res.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    series.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return series
}

const requests = (service: string, method: string, status: number) => `mproxy_http_requests_total{service="${service}",method="${method}",status="${status}"}`

describe('metrics', () => {
  it('counts requests over all workers by service, method and status, leaving out excluded paths', async () => {
    const backend = await startBackend(handler)
    const { proxy, metricsPort } = await startWithMetrics()
    await proxy.deploy([backend.address], ['--name', 'web', '--host', 'web.test', '--exclude-metrics-path', '/skip'])

    // A new connection each: the kernel spreads them over both workers' sockets.
    for (let i = 0; i < REQUESTS; i++) expect((await request(proxy.port, { host: 'web.test', path: `/page/${i}` })).status).toBe(200)
    for (const path of ['/skip', '/skip?x=1']) expect((await request(proxy.port, { host: 'web.test', path })).status).toBe(200)
    expect((await request(proxy.port, { host: 'web.test', path: '/skip/below' })).status).toBe(200)
    await request(proxy.port, { host: 'web.test', method: 'DELETE', path: '/x' })
    await request(proxy.port, { host: 'web.test', method: 'PROPFIND', path: '/x' })
    expect((await request(proxy.port, { host: 'web.test', method: 'POST', path: '/reset' })).status).toBe(502)
    expect((await request(proxy.port, { host: 'nobody.test', path: '/' })).status).toBe(404)

    const metrics = await scrape(metricsPort)
    expect(metrics.get(requests('web', 'GET', 200))).toBe(REQUESTS + 1)
    expect(metrics.get(requests('web', 'DELETE', 200))).toBe(1)
    expect(metrics.get(requests('web', 'OTHER', 200))).toBe(1)
    expect(metrics.get(requests('web', 'POST', 502))).toBe(1)
    expect(metrics.get(requests('', 'GET', 404))).toBe(1)
    expect(metrics.get('mproxy_http_request_duration_seconds_count{service="web",method="GET"}')).toBe(REQUESTS + 1)
    expect(metrics.get('mproxy_http_request_duration_seconds_bucket{service="web",method="GET",le="+Inf"}')).toBe(REQUESTS + 1)
    expect(metrics.get('mproxy_upstream_errors_total{service="web",kind="reset"}')).toBe(1)
    expect(metrics.get('mproxy_upstream_errors_total{service="web",kind="refused"}')).toBe(0)
    expect(metrics.get('mproxy_http_in_flight_requests{service="web"}')).toBe(0)
    expect(metrics.get('mproxy_deploys_total{service="web",result="success"}')).toBe(1)
    expect(metrics.get(`mproxy_target_healthy{service="web",target="${backend.address}"}`)).toBe(1)
    // prom-client's process metrics, summed over the primary and its workers.
    expect(metrics.get('process_resident_memory_bytes')).toBeGreaterThan(0)

    // Counters carry on when the workers are replaced.
    expect((await proxy.cli(['reload'])).code).toBe(0)
    const reloaded = await scrape(metricsPort)
    expect(reloaded.get(requests('web', 'GET', 200))).toBe(REQUESTS + 1)
    expect((await request(proxy.port, { host: 'web.test', path: '/again' })).status).toBe(200)
    expect((await scrape(metricsPort)).get(requests('web', 'GET', 200))).toBe(REQUESTS + 2)

    expect((await request(metricsPort, { path: '/other' })).status).toBe(404)
  })

  it('shows requests and upgraded connections in flight until they finish, and counts failed deploys', async () => {
    const backend = await startBackend(handler)
    const { proxy, metricsPort } = await startWithMetrics()
    await proxy.deploy([backend.address], ['--name', 'web'])

    const slow = request(proxy.port, { path: `/slow?ms=${SLOW_MS}` })
    await waitUntil(async () => (await scrape(metricsPort)).get('mproxy_http_in_flight_requests{service="web"}') === 1, SLOW_MS, 'one request in flight')
    expect((await slow).status).toBe(200)
    await waitUntil(async () => (await scrape(metricsPort)).get('mproxy_http_in_flight_requests{service="web"}') === 0, SLOW_MS, 'nothing in flight')

    const upgraded = await openUpgrade(proxy.port, { path: '/live' })
    expect((await scrape(metricsPort)).get('mproxy_http_in_flight_requests{service="web"}')).toBe(1)
    upgraded.socket.destroy()
    await waitUntil(async () => (await scrape(metricsPort)).get(requests('web', 'GET', 101)) === 1, SLOW_MS, 'the upgrade to be counted')
    expect((await scrape(metricsPort)).get('mproxy_http_in_flight_requests{service="web"}')).toBe(0)

    const unhealthy = await startBackend((req, res) => { res.statusCode = req.url === '/up' ? 503 : 200; res.end() })
    const failed = await proxy.cli(['deploy', unhealthy.address, '--name', 'web', '--health-check-interval', '100ms', '--deploy-timeout', '500ms'])
    expect(failed.code).not.toBe(0)
    const metrics = await scrape(metricsPort)
    expect(metrics.get('mproxy_deploys_total{service="web",result="success"}')).toBe(1)
    expect(metrics.get('mproxy_deploys_total{service="web",result="failure"}')).toBe(1)
    expect(metrics.get('mproxy_deploy_duration_seconds_count{service="web",result="failure"}')).toBe(1)
  })

  it('reports when each host\'s certificate expires, and keeps excluded paths across a restart', async () => {
    const backend = await startBackend(handler)
    const certificate = makeTestCertificate(['secure.test', 'www.secure.test'])
    const { proxy, metricsPort } = await startWithMetrics()
    await proxy.deploy([backend.address], ['--name', 'secure', '--host', 'secure.test,www.secure.test',
      '--tls-certificate-path', certificate.certFile, '--tls-private-key-path', certificate.keyFile, '--exclude-metrics-path', '/skip'])

    const [status] = (await proxy.list()).services
    expect(status.excludeMetricsPaths).toEqual(['/skip'])
    const expiry = Date.parse(status.certificates[0].notAfter!) / 1000
    const metrics = await scrape(metricsPort)
    expect(metrics.get('mproxy_certificate_expiry_timestamp_seconds{host="secure.test"}')).toBe(expiry)
    expect(metrics.get('mproxy_certificate_expiry_timestamp_seconds{host="www.secure.test"}')).toBe(expiry)
    await proxy.stop()

    const restarted = await startProxy({ workers: 1, stateDir: proxy.stateDir })
    expect((await restarted.list()).services[0].excludeMetricsPaths).toEqual(['/skip'])
    expect((await restarted.status()).metricsPort).toBeUndefined()
  })

  it('hands its port to a primary taking over, and refuses a port another proxy holds', async () => {
    const backend = await startBackend(handler)
    const { proxy: old, metricsPort } = await startWithMetrics(1)
    await old.deploy([backend.address], ['--name', 'web'])

    const next = await startProxy({ workers: 1, stateDir: old.stateDir, args: ['--metrics-port', String(metricsPort)] })
    expect(await old.exited).toBe(0)
    expect((await next.status()).metricsPort).toBe(metricsPort)
    expect((await request(next.port, { path: '/' })).status).toBe(200)
    expect((await scrape(metricsPort)).get(requests('web', 'GET', 200))).toBe(1)

    const other = await runCli(['run', '--http-port', '0', '--https-port', '0', '--workers', '1', '--metrics-port', String(metricsPort)],
      { stateDir: makeStateDir(), timeoutMs: PROXY_START_TIMEOUT_MS })
    expect(other.code).toBe(1)
    expect(errorLines(other.stderr)).toEqual([`Error: cannot listen on metrics port ${metricsPort}: address already in use (another proxy or web server?)`])
  })

  it('counts the live nodes of a fleet sharing Redis, and applies excluded paths deployed through another node', async () => {
    const redis = await startRedis()
    const backend = await startBackend(handler)
    const { proxy, metricsPort } = await startWithMetrics(1, ['--redis-url', redis.url])
    const other = await startProxy({ workers: 1, args: ['--redis-url', redis.url] })
    expect((await scrape(metricsPort)).get('mproxy_fleet_nodes_alive')).toBe(2)

    await other.deploy([backend.address], ['--name', 'web', '--exclude-metrics-path', '/skip'])
    for (const path of ['/skip', '/counted']) expect((await request(proxy.port, { path })).status).toBe(200)
    const metrics = await scrape(metricsPort)
    expect(metrics.get(requests('web', 'GET', 200))).toBe(1)
    // The deploy was made through the other node, and is counted there.
    expect(metrics.get('mproxy_deploys_total{service="web",result="success"}')).toBeUndefined()

    await other.stop()
    await waitUntil(async () => (await scrape(metricsPort)).get('mproxy_fleet_nodes_alive') === 1, undefined, 'one node alive')
  })
})
