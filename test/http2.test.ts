/**
 * HTTP/2 over HTTPS: clients that negotiate `h2` by ALPN are served over HTTP/2, each stream
 * proxied to the HTTP/1.1 upstream like an HTTP/1.1 request (headers, in-flight counting,
 * drains, access log); stopping workers send GOAWAY and let open streams finish. HTTP/1.1 and
 * WebSocket upgrades over TLS keep working on the same port.
 */
import type * as http from 'node:http'
import * as tls from 'node:tls'
import {
  SHORT_TIMEOUT_MS, connectH2, h2Request, makeTestCertificate, onCleanup, request, runH2Load, startBackend, startProxy,
  waitUntil, type Backend, type TestCertificate,
} from './helpers'

const HOST = 'h2.mproxy.test'
/** Streams opened at once on one session. */
const CONCURRENT_STREAMS = 100
/** How long the upstream holds a "slow" request: long enough to span a deploy or a reload. */
const SLOW_MS = 1_500
/** Load during deploys and reloads. */
const LOAD_SESSIONS = 4
const LOAD_STREAMS = 16
const WARM_UP_REQUESTS = 100
const LOAD_TEST_TIMEOUT_MS = 60_000
const BIG_RESPONSE_BYTES = 4 * 1024 * 1024
/** A session must open its first stream within the header timeout (as an HTTP/1.1 client must send its head)... */
const FIRST_STREAM_TIMEOUT_MS = 10_000
/** ...give or take this, on a busy machine. */
const CUT_MARGIN_MS = 5_000

/** Echoes what the app received: method, target, headers and body, as JSON. */
function echoHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ method: req.method, url: req.url, httpVersion: req.httpVersion, headers: req.headers, body: Buffer.concat(chunks).toString() }))
  })
}

interface Echo {
  method: string
  url: string
  httpVersion: string
  headers: http.IncomingHttpHeaders
  body: string
}

describe('HTTP/2 over HTTPS', () => {
  let certificate: TestCertificate
  beforeAll(() => {
    certificate = makeTestCertificate([HOST])
  })
  const tlsFlags = () => ['--host', HOST, '--tls-certificate-path', certificate.certFile, '--tls-private-key-path', certificate.keyFile]
  const h2 = () => ({ ca: certificate.ca, servername: HOST })

  async function proxyFor(backend: Backend, workers = 1) {
    const proxy = await startProxy({ workers })
    await proxy.deploy([backend.address], tlsFlags())
    return proxy
  }

  it('negotiates h2 by ALPN and proxies GET and POST to the HTTP/1.1 app with its headers, path and body', async () => {
    const backend = await startBackend(echoHandler)
    const proxy = await proxyFor(backend)
    const session = await connectH2(proxy.httpsPort, h2())
    expect(session.alpnProtocol).toBe('h2')

    const get = await h2Request(session, { path: '/a/b?c=d&e', headers: { cookie: ['a=1', 'b=2'], 'x-custom': 'yes', 'x-request-id': 'req-42' } })
    const post = await h2Request(session, { method: 'POST', path: '/upload', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(100_000) })

    expect(get.status).toBe(200)
    const seen = JSON.parse(get.body) as Echo
    expect(seen).toMatchObject({ method: 'GET', url: '/a/b?c=d&e', httpVersion: '1.1', body: '' })
    expect(seen.headers).toMatchObject({
      host: `${HOST}:${proxy.httpsPort}`, cookie: 'a=1; b=2', 'x-custom': 'yes', 'x-request-id': 'req-42',
      'x-forwarded-proto': 'https', 'x-forwarded-for': '127.0.0.1', 'x-forwarded-host': `${HOST}:${proxy.httpsPort}`,
      'x-request-start': expect.stringMatching(/^t=\d+$/),
    })
    expect(Object.keys(seen.headers).filter((name) => name.startsWith(':'))).toEqual([])
    const posted = JSON.parse(post.body) as Echo
    expect({ ...posted, body: `${posted.body.length} bytes`, headers: undefined }).toMatchObject({ method: 'POST', url: '/upload', body: '100000 bytes' })
    expect(posted.body === 'x'.repeat(100_000)).toBe(true)
    expect(posted.headers).toMatchObject({ 'content-type': 'text/plain', 'transfer-encoding': 'chunked' })
  })

  it('never sends connection-specific response fields, and streams a large body with backpressure', async () => {
    const body = Buffer.alloc(BIG_RESPONSE_BYTES, 'z')
    const backend = await startBackend((req, res) => {
      if (req.url === '/up') return void res.end('ok')
      // Chunked, with Keep-Alive and Connection fields: none of them exists in HTTP/2.
      res.writeHead(200, { 'keep-alive': 'timeout=5', connection: 'keep-alive', 'x-app': 'yes' })
      res.write(body.subarray(0, 1024))
      setTimeout(() => res.end(body.subarray(1024)), 20)
    })
    const proxy = await proxyFor(backend)
    const session = await connectH2(proxy.httpsPort, h2())

    const res = await h2Request(session, { path: '/big' })

    expect(res.status).toBe(200)
    expect(res.body.length).toBe(BIG_RESPONSE_BYTES)
    expect(res.headers['x-app']).toBe('yes')
    for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade']) expect(res.headers[name]).toBeUndefined()
  })

  it(`serves ${CONCURRENT_STREAMS} concurrent streams on one session`, async () => {
    const backend = await startBackend()
    const proxy = await proxyFor(backend)
    const session = await connectH2(proxy.httpsPort, h2())

    const started = Date.now()
    const results = await Promise.all(Array.from({ length: CONCURRENT_STREAMS }, (_, i) => h2Request(session, { path: `/slow?ms=300&i=${i}` })))

    expect(results.map((res) => `${res.status} ${res.body}`)).toEqual(Array(CONCURRENT_STREAMS).fill(`200 ${backend.name}`))
    // Served side by side, not one after another.
    expect(Date.now() - started).toBeLessThan(CONCURRENT_STREAMS * 300 / 4)
  })

  it('logs the protocol of each request in the access log', async () => {
    const backend = await startBackend()
    const proxy = await proxyFor(backend)
    const session = await connectH2(proxy.httpsPort, h2())

    await h2Request(session, { path: '/over-h2' })
    await request(proxy.httpsPort, { host: HOST, path: '/over-h1', tls: h2() })

    const h2Line = await proxy.waitForLog((line) => line.msg === 'request' && line.path === '/over-h2')
    const h1Line = await proxy.waitForLog((line) => line.msg === 'request' && line.path === '/over-h1')
    expect(h2Line).toMatchObject({ proto: 'HTTP/2.0', status: 200, host: `${HOST}:${proxy.httpsPort}`, method: 'GET', service: expect.any(String) })
    expect(h1Line).toMatchObject({ proto: 'HTTP/1.1', status: 200 })
  })

  it('loses no stream while the service is redeployed under load, and the drain waits for a slow stream', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await proxyFor(a, 2)
    const slowSession = await connectH2(proxy.httpsPort, h2())
    const load = runH2Load(proxy.httpsPort, { ...h2(), sessions: LOAD_SESSIONS, streams: LOAD_STREAMS })
    await waitUntil(() => load.snapshot().ok >= WARM_UP_REQUESTS, 10_000, 'load to warm up')

    const slow = h2Request(slowSession, { path: `/slow?ms=${SLOW_MS}` })
    await waitUntil(() => a.appRequests > load.snapshot().ok + load.snapshot().failed, SHORT_TIMEOUT_MS, 'the slow stream at the app')
    const deployStarted = Date.now()
    await proxy.deploy([b.address], tlsFlags())
    const deployMs = Date.now() - deployStarted
    const okAfterDeploy = load.snapshot().ok
    await waitUntil(() => load.snapshot().ok >= okAfterDeploy + WARM_UP_REQUESTS, 10_000, 'load on the new target')
    const result = await load.stop()

    expect(await slow).toMatchObject({ status: 200, body: a.name })
    // The deploy returned only once the old target had finished the slow stream.
    expect(deployMs).toBeGreaterThanOrEqual(SLOW_MS / 2)
    expect(result.errors).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.refused).toBe(0)
    expect(result.bodies.get(a.name)).toBeGreaterThan(0)
    expect(result.bodies.get(b.name)).toBeGreaterThan(0)
  }, LOAD_TEST_TIMEOUT_MS)

  it('sends GOAWAY on reload and lets an open slow stream finish; the load moves to the new workers', async () => {
    const backend = await startBackend()
    const proxy = await proxyFor(backend, 2)
    const session = await connectH2(proxy.httpsPort, h2())
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)))
    const load = runH2Load(proxy.httpsPort, { ...h2(), sessions: LOAD_SESSIONS, streams: LOAD_STREAMS })
    await waitUntil(() => load.snapshot().ok >= WARM_UP_REQUESTS, 10_000, 'load to warm up')

    const slow = h2Request(session, { path: `/slow?ms=${SLOW_MS}` })
    await waitUntil(() => backend.appRequests > load.snapshot().ok + load.snapshot().failed, SHORT_TIMEOUT_MS, 'the slow stream at the app')
    expect((await proxy.cli(['reload'])).code).toBe(0)

    expect(await goaway).toBe(0)
    expect(await slow).toMatchObject({ status: 200, body: backend.name })
    const okAfterReload = load.snapshot().ok
    await waitUntil(() => load.snapshot().ok >= okAfterReload + WARM_UP_REQUESTS, 10_000, 'load on the new workers')
    const result = await load.stop()
    expect(result.errors).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.reconnects).toBeGreaterThan(0)
  }, LOAD_TEST_TIMEOUT_MS)

  it('sends GOAWAY on shutdown and finishes the open stream before exiting', async () => {
    const backend = await startBackend()
    const proxy = await proxyFor(backend)
    const session = await connectH2(proxy.httpsPort, h2())
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)))
    const slow = h2Request(session, { path: `/slow?ms=${SLOW_MS}` })
    await waitUntil(() => backend.appRequests > 0, SHORT_TIMEOUT_MS, 'the slow stream at the app')

    const exited = proxy.stop('SIGTERM')

    expect(await goaway).toBe(0)
    expect(await slow).toMatchObject({ status: 200, body: backend.name })
    expect(await exited).toBe(0)
  })

  it('closes a session that opens no stream within the header timeout', async () => {
    const backend = await startBackend()
    const proxy = await proxyFor(backend)
    const session = await connectH2(proxy.httpsPort, h2())
    const connectedAt = Date.now()

    await new Promise<void>((resolve) => session.once('close', () => resolve()))

    expect(Date.now() - connectedAt).toBeGreaterThanOrEqual(FIRST_STREAM_TIMEOUT_MS - 1_000)
    expect(Date.now() - connectedAt).toBeLessThan(FIRST_STREAM_TIMEOUT_MS + CUT_MARGIN_MS)
  }, FIRST_STREAM_TIMEOUT_MS + CUT_MARGIN_MS + 10_000)

  it('still serves HTTP/1.1 and WebSocket upgrades over TLS on the same port', async () => {
    const backend = await startBackend()
    const proxy = await proxyFor(backend)

    const plain = await request(proxy.httpsPort, { host: HOST, tls: h2() })
    expect(plain.status).toBe(200)
    expect(plain.body).toBe(backend.name)

    const socket = tls.connect({ host: '127.0.0.1', port: proxy.httpsPort, servername: HOST, ca: certificate.ca, ALPNProtocols: ['http/1.1'] })
    onCleanup(() => socket.destroy())
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', () => resolve()).once('error', reject))
    expect(socket.alpnProtocol).toBe('http/1.1')
    let received = ''
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()))
    socket.write(`GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`)
    await waitUntil(() => received.includes('\r\n\r\n'), SHORT_TIMEOUT_MS, 'the 101 answer')
    expect(received).toMatch(/^HTTP\/1\.1 101 /)
    received = ''
    socket.write('ping over tls')
    await waitUntil(() => received === 'ping over tls', SHORT_TIMEOUT_MS, 'the echo')
  })

  it('passes an h2 upload with Expect: 100-continue on, and its body once the app asked for it', async () => {
    const backend = await startBackend(echoHandler)
    const proxy = await proxyFor(backend)
    const session = await connectH2(proxy.httpsPort, h2())

    const stream = session.request({ ':method': 'PUT', ':path': '/put', expect: '100-continue' })
    const continued = new Promise<void>((resolve) => stream.once('continue', () => resolve()))
    const answered = new Promise<string>((resolve, reject) => {
      let body = ''
      stream.on('data', (chunk: Buffer) => (body += chunk.toString()))
      stream.on('end', () => resolve(body))
      stream.on('error', reject)
    })
    await continued
    stream.end('the body')

    expect(JSON.parse(await answered)).toMatchObject({ method: 'PUT', url: '/put', body: 'the body', headers: { expect: '100-continue' } })
  })
})
