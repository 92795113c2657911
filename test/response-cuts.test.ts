/**
 * A response that cannot finish is a cut: the client's connection is closed at once (never left
 * hanging with a half-sent body, never ended as if the body were whole) and nothing stays in
 * flight for the target.
 */
import type * as net from 'node:net'
import { SHORT_TIMEOUT_MS, getBody, startBackend, startProxy, waitUntil } from './helpers'
import { connectRaw, inflightOf, parseResponse } from './raw-http'

/** How soon after the upstream's cut the client must see its connection close. */
const CUT_BOUND_MS = 5_000
/** The streamed response: a line every tick, for far longer than any test waits. */
const STREAM_TICK_MS = 200
const STREAM_DURATION_MS = 30_000
/** `deploy --drain-timeout` of the drain cut. */
const DRAIN_TIMEOUT_MS = 500
/** How long the deploy that cuts the stream may take (the stream itself would take 30 s). */
const DRAIN_DEPLOY_BOUND_MS = 8_000
/** Lets the first bytes of the body leave the upstream before it resets. */
const BEFORE_RESET_MS = 50

const ways: Array<[string, (socket: net.Socket) => void]> = [
  ['resets (RST)', (socket) => socket.resetAndDestroy()],
  ['closes (FIN)', (socket) => socket.destroy()],
]

describe('response cuts', () => {
  it.each(ways)('closes the client connection when the upstream %s mid-body, and frees the in-flight slot', async (_case, cut) => {
    const backend = await startBackend((req, res) => {
      if (req.url === '/up') return void res.end('ok')
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000 })
      res.write('0123456789')
      const socket = req.socket
      setTimeout(() => cut(socket), BEFORE_RESET_MS)
    })
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address])
    const client = await connectRaw(proxy.port)

    client.write('GET /cut HTTP/1.1\r\nHost: app.test\r\n\r\n')
    await client.waitFor((text) => /^HTTP\/1\.1 \d{3}/.test(text), undefined, 'a response head')
    const closed = await client.waitForClose(CUT_BOUND_MS)

    expect(closed).toBe(true)
    const response = parseResponse(client.received())
    expect(response?.status).toBe(200)
    expect(response?.complete).toBe(false)
    await waitUntil(async () => (await inflightOf(proxy, backend.address)) === 0, SHORT_TIMEOUT_MS, 'no request in flight')
    // The proxy keeps serving the target.
    expect(await getBody(proxy.port, { path: '/up' })).toBe('ok')
  })

  it('closes the client connection of a streaming response cut at the end of a drain', async () => {
    const streaming = await startBackend((req, res) => {
      if (req.url === '/up') return void res.end('ok')
      res.writeHead(200, { 'content-type': 'text/plain' })
      const timer = setInterval(() => res.write('tick\n'), STREAM_TICK_MS)
      const stop = setTimeout(() => {
        clearInterval(timer)
        res.end('done\n')
      }, STREAM_DURATION_MS)
      res.once('close', () => {
        clearInterval(timer)
        clearTimeout(stop)
      })
    })
    const next = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([streaming.address])
    const client = await connectRaw(proxy.port)
    client.write('GET /stream HTTP/1.1\r\nHost: app.test\r\n\r\n')
    await client.waitFor((text) => text.includes('tick'), undefined, 'the stream to start')

    const deployStarted = Date.now()
    await proxy.deploy([next.address], ['--drain-timeout', `${DRAIN_TIMEOUT_MS}ms`])
    const deployMs = Date.now() - deployStarted

    expect(deployMs).toBeLessThan(DRAIN_DEPLOY_BOUND_MS)
    expect(await client.waitForClose(CUT_BOUND_MS)).toBe(true)
    const response = parseResponse(client.received())
    expect(response?.status).toBe(200)
    // Cut, not ended as if the body were whole (no last chunk).
    expect(response?.complete).toBe(false)
    expect(client.text()).not.toContain('done')
    expect(await getBody(proxy.port)).toBe(next.name)
  })
})
