/**
 * `deploy --canonical-host`: requests for the service's other hosts get a 301 to the canonical
 * host, the request target kept byte for byte, in one hop with the redirect to HTTPS. Requests
 * are written by hand so that the target is exactly what a client sent.
 */
import * as tls from 'node:tls'
import {
  errorLines, makeTestCertificate, onCleanup, openUpgrade, request, startBackend, startProxy, startRedis, waitUntil, type TestCertificate,
} from './helpers'
import { connectRaw, rawRequest, wrapRawSocket, type RawResponse } from './raw-http'

const CANONICAL = 'example.test'
const OTHER = 'www.example.test'
const HOSTS = ['--host', CANONICAL, '--host', OTHER, '--canonical-host', CANONICAL]
/** Escapes, a `;`, an invalid escape and empty parameters: what a strict parser would change. */
const TARGET = '/a%20b/c;d?q=1&x=%zz&&y=%E2%82%AC'
/** How long a second node may take to apply a deploy made through the first. */
const FLEET_CATCH_UP_MS = 10_000
/** Redis, two proxies and a backend take more than the default test time. */
const FLEET_TEST_TIMEOUT_MS = 60_000

function get(host: string, target = TARGET): string {
  return `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`
}

/** One request over TLS, written by hand, with `servername` as SNI. */
async function rawTlsRequest(port: number, certificate: TestCertificate, servername: string, bytes: string): Promise<RawResponse> {
  const socket = tls.connect({ port, host: '127.0.0.1', servername, ca: certificate.ca })
  onCleanup(() => socket.destroy())
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject))
  const client = wrapRawSocket(socket)
  client.write(bytes)
  return client.response()
}

describe('canonical host', () => {
  let certificate: TestCertificate
  beforeAll(() => {
    certificate = makeTestCertificate([CANONICAL, OTHER])
  })

  it('redirects the other hosts to it over HTTP with the target and port kept, and serves it', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], HOSTS)
    const before = backend.appRequests

    const redirected = await rawRequest(proxy.port, get(`${OTHER}:${proxy.port}`))
    expect(redirected.status).toBe(301)
    expect(redirected.headers.get('location')).toEqual([`http://${CANONICAL}:${proxy.port}${TARGET}`])
    expect(backend.appRequests).toBe(before)

    const served = await rawRequest(proxy.port, get(`${CANONICAL.toUpperCase()}:${proxy.port}`))
    expect([served.status, served.body.toString()]).toEqual([200, backend.name])

    const [service] = (await proxy.list()).services
    expect(service.canonicalHost).toBe(CANONICAL)
    expect((await proxy.cli(['list'])).stdout).toContain(`${CANONICAL}(canonical),${OTHER}`)
  })

  it('makes one redirect with the redirect to HTTPS, and keeps https for HTTPS requests to other hosts', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], [...HOSTS, '--tls-certificate-path', certificate.certFile, '--tls-private-key-path', certificate.keyFile])
    const location = `https://${CANONICAL}:${proxy.httpsPort}${TARGET}`

    for (const host of [`${OTHER}:${proxy.port}`, CANONICAL]) {
      const plain = await rawRequest(proxy.port, get(host))
      expect([host, plain.status, plain.headers.get('location')]).toEqual([host, 301, [location]])
    }
    const secureOther = await rawTlsRequest(proxy.httpsPort, certificate, OTHER, get(`${OTHER}:${proxy.httpsPort}`))
    expect([secureOther.status, secureOther.headers.get('location')]).toEqual([301, [location]])
    const secureCanonical = await rawTlsRequest(proxy.httpsPort, certificate, CANONICAL, get(`${CANONICAL}:${proxy.httpsPort}`))
    expect([secureCanonical.status, secureCanonical.body.toString()]).toEqual([200, backend.name])
  })

  it('redirects WebSocket upgrades for other hosts with a 301 on the socket, and upgrades the canonical host', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], HOSTS)
    const before = backend.appRequests

    const client = await connectRaw(proxy.port)
    client.write(`GET /cable?room=1 HTTP/1.1\r\nHost: ${OTHER}:${proxy.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`)
    const redirected = await client.response()
    expect([redirected.status, redirected.headers.get('location')]).toEqual([301, [`http://${CANONICAL}:${proxy.port}/cable?room=1`]])
    expect(await client.waitForClose(1_000)).toBe(true)
    expect(backend.appRequests).toBe(before)

    const upgraded = await openUpgrade(proxy.port, { host: CANONICAL, path: '/cable' })
    expect(await upgraded.echo('ping')).toBe('ping')
    upgraded.socket.destroy()
  })

  it('sends every other host to it when the service has no host', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--canonical-host', CANONICAL])

    const redirected = await request(proxy.port, { host: 'anything.test', path: '/x?y' })
    expect([redirected.status, redirected.headers.location]).toEqual([301, `http://${CANONICAL}/x?y`])
    expect((await request(proxy.port, { host: CANONICAL })).body).toBe(backend.name)
    expect((await proxy.cli(['list'])).stdout).toContain(`*,${CANONICAL}(canonical)`)
  })

  it.each([
    ['a host that is not one of the hosts', ['--host', CANONICAL, '--host', OTHER, '--canonical-host', 'other.test'],
      `Error: canonical host other.test is not one of the service's hosts (${CANONICAL}, ${OTHER})`],
    ['a wildcard', ['--host', `*.${CANONICAL}`, '--canonical-host', `*.${CANONICAL}`],
      `Error: invalid canonical host "*.${CANONICAL}": redirects need one host name, not a wildcard`],
  ])('refuses %s with one error line and leaves the service as it was', async (_case, flags, message) => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', CANONICAL, '--host', OTHER, '--name', 'web'])

    const refused = await proxy.cli(['deploy', backend.address, '--name', 'web', ...flags])
    expect(refused.code).toBe(1)
    expect(errorLines(refused.stderr)).toEqual([message])
    const [service] = (await proxy.list()).services
    expect([service.hosts, service.canonicalHost]).toEqual([[CANONICAL, OTHER], undefined])
    expect((await request(proxy.port, { host: OTHER })).status).toBe(200)
  })

  it('applies the redirect and header options on every node of a fleet', async () => {
    const redis = await startRedis()
    const backend = await startBackend()
    const nodes = await Promise.all(['n1', 'n2'].map((name) => startProxy({ workers: 1, args: ['--redis-url', redis.url, '--node-name', name] })))
    await nodes[0].deploy([backend.address], [...HOSTS, '--forward-headers', '--log-request-header', 'X-A'])

    const other = nodes[1]
    const [service] = await waitUntil(async () => {
      const { services } = await other.list()
      return services[0]?.canonicalHost ? services : undefined
    }, FLEET_CATCH_UP_MS, 'the second node to apply the deploy')
    expect(service).toMatchObject({ canonicalHost: CANONICAL, forwardHeaders: true, logRequestHeaders: ['x-a'], logResponseHeaders: [] })
    expect((await request(other.port, { host: OTHER, path: '/x' })).headers.location).toBe(`http://${CANONICAL}/x`)
  }, FLEET_TEST_TIMEOUT_MS)

  it('keeps the redirect and header options across a restart', async () => {
    const backend = await startBackend()
    const first = await startProxy({ workers: 1 })
    await first.deploy([backend.address], [...HOSTS, '--forward-headers', '--log-request-header', 'X-A,X-B', '--log-response-header', 'Etag'])
    expect(await first.stop()).toBe(0)

    const second = await startProxy({ workers: 1, stateDir: first.stateDir })
    const [service] = (await second.list()).services
    expect(service).toMatchObject({ canonicalHost: CANONICAL, forwardHeaders: true, logRequestHeaders: ['x-a', 'x-b'], logResponseHeaders: ['etag'] })
    expect((await request(second.port, { host: OTHER })).headers.location).toBe(`http://${CANONICAL}/`)
    const seen = await request(second.port, { host: CANONICAL, path: '/headers', headers: { 'x-forwarded-proto': 'https' } })
    expect(JSON.parse(seen.body)).toMatchObject({ 'x-forwarded-proto': 'https' })
  })
})
