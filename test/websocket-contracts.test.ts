/**
 * WebSocket upgrades follow the same rules as plain requests: redirected to HTTPS like them,
 * access-logged (when they close, with the bytes each way), and cut on both sides at once.
 */
import type * as net from 'node:net'
import { SHORT_TIMEOUT_MS, delayMs, makeTestCertificate, openUpgrade, request, startBackend, startProxy, waitUntil } from './helpers'
import { connectRaw, inflightOf, rawRequest, startRawUpstream } from './raw-http'

const TLS_HOST = 'ws.mproxy.test'
/** The upgraded connection stays open this long, so the logged duration shows it was timed to its close. */
const HOLD_OPEN_MS = 500
/** Bytes each way that are not payload and that a log may count (the 101 exchange's heads). */
const HEAD_ALLOWANCE_BYTES = 1_024
/** How long the request log line may take (lines are written in 100 ms batches). */
const LOG_WAIT_MS = 5_000
/** How soon the client must see the proxy's side of a cut upgraded connection. */
const CUT_BOUND_MS = 5_000

function upgradeRequest(host: string, path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
}

describe('WebSocket upgrades', () => {
  it('are redirected to HTTPS like plain requests for a service deployed with TLS', async () => {
    const certificate = makeTestCertificate([TLS_HOST])
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', TLS_HOST, '--tls-certificate-path', certificate.certFile, '--tls-private-key-path', certificate.keyFile])
    const host = `${TLS_HOST}:${proxy.port}`
    const plain = await request(proxy.port, { host, path: '/ws?x=1' })
    expect(plain.status).toBe(301)

    const upgrade = await rawRequest(proxy.port, upgradeRequest(host, '/ws?x=1'))

    expect(upgrade.status).toBe(301)
    expect(upgrade.headers.get('location')).toEqual([plain.headers.location])
    expect(backend.appRequests).toBe(0)
  })

  it('are logged when they close, with status 101, duration and the bytes each way', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'ws.test'])
    const ws = await openUpgrade(proxy.port, { host: 'ws.test', path: '/ws-logged' })
    const payload = ['hello', 'more data']
    for (const text of payload) expect(await ws.echo(text)).toBe(text)
    const payloadBytes = payload.join('').length

    await delayMs(HOLD_OPEN_MS)
    ws.socket.end()
    await ws.closed
    const line = await proxy.waitForLog((l) => l.msg === 'request' && l.path === '/ws-logged', LOG_WAIT_MS)

    expect(line).toMatchObject({ status: 101, method: 'GET', host: 'ws.test', target: backend.address })
    expect(line.duration).toBeGreaterThanOrEqual(HOLD_OPEN_MS)
    for (const field of ['bytes', 'bytesIn']) {
      expect({ field, value: line[field] }).toEqual({ field, value: expect.any(Number) })
      expect(line[field]).toBeGreaterThanOrEqual(payloadBytes)
      expect(line[field]).toBeLessThan(payloadBytes + HEAD_ALLOWANCE_BYTES)
    }
  })

  it.each<[string, (socket: net.Socket) => void]>([
    ['closes (FIN)', (socket) => socket.destroy()],
    ['resets (RST)', (socket) => socket.resetAndDestroy()],
  ])('are closed on the client side, not left half-open, when the upstream %s', async (_case, cut) => {
    // Switches protocols, then drops the connection at the first byte it receives.
    const upstream = await startRawUpstream((_req, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
      socket.once('data', () => cut(socket))
    })
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([upstream.address])
    // Half-open allowed: the client does not close its side when the proxy ends its own, so
    // only a proxy that really closes the connection gets it closed.
    const client = await connectRaw(proxy.port, { allowHalfOpen: true })
    client.write(upgradeRequest('app.test', '/ws-cut'))
    await client.waitFor((text) => text.startsWith('HTTP/1.1 101'), undefined, 'the 101 answer')

    client.write('x')

    expect(await client.waitForEnd(CUT_BOUND_MS)).toBe(true)
    await waitUntil(async () => (await inflightOf(proxy, upstream.address)) === 0, SHORT_TIMEOUT_MS, 'the upgrade to leave the in-flight count')
    // The proxy's socket is gone: writing to it is refused, and the client's socket closes.
    const closed = await waitUntil(() => {
      client.write('y')
      return client.closedAt !== undefined
    }, CUT_BOUND_MS, 'the client socket to close').catch(() => false)
    expect(closed).toBe(true)
    expect(client.error?.message ?? 'closed').toMatch(/ECONNRESET|EPIPE|closed/)
  })
})
