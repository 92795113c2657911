/**
 * Pooled upstream connections: an upstream may close a kept-alive connection at any moment
 * after a response, and that must never cost a client request. A request that fails on a reused
 * connection before any byte of an answer came back is retried once, on a fresh connection, if
 * it is idempotent; anything else is not replayed.
 */
import * as http from 'node:http'
import type * as net from 'node:net'
import { request, startBackend, startProxy } from './helpers'
import { responseBytes, startRawUpstream } from './raw-http'

/** Sequential GETs against an upstream that closes after every response. */
const SEQUENTIAL_REQUESTS = 300
/** Then this many clients at once, each sending PER_CLIENT GETs back to back. */
const CONCURRENT_CLIENTS = 8
const PER_CLIENT = 40
/** The second variant closes the connection this long after each response. */
const CLOSE_AFTER_MS = 5
/** Bound for each client request: a retry must not take anywhere near this. */
const REQUEST_TIMEOUT_MS = 10_000

type Closer = (socket: net.Socket) => void

const closers: Array<[string, Closer]> = [
  ['right after the response', (socket) => setImmediate(() => socket.destroy())],
  [`${CLOSE_AFTER_MS} ms after the response`, (socket) => setTimeout(() => socket.destroy(), CLOSE_AFTER_MS)],
]

/** Answers 200 with keep-alive headers, then closes the connection anyway. */
async function startClosingBackend(close: Closer): Promise<{ address: string }> {
  return startBackend((req, res) => {
    const socket = req.socket
    res.setHeader('connection', 'keep-alive')
    res.setHeader('keep-alive', 'timeout=5')
    res.end('ok', () => close(socket))
  })
}

/** Counts statuses (and socket errors, as 0) over `count` GETs on one keep-alive client connection. */
async function sequentialGets(port: number, count: number, agent: http.Agent): Promise<Map<number, number>> {
  const statuses = new Map<number, number>()
  for (let i = 0; i < count; i++) {
    const status = await request(port, { path: `/r${i}`, agent, timeoutMs: REQUEST_TIMEOUT_MS }).then((res) => res.status, () => 0)
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
  }
  return statuses
}

function newAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 1 })
}

describe('pooled upstream connections', () => {
  it.each(closers)('cost no request when the upstream closes each connection %s', async (_case, close) => {
    const backend = await startClosingBackend(close)
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address])
    const agents = Array.from({ length: CONCURRENT_CLIENTS }, newAgent)

    try {
      const sequential = await sequentialGets(proxy.port, SEQUENTIAL_REQUESTS, agents[0])
      const concurrent = await Promise.all(agents.map((agent) => sequentialGets(proxy.port, PER_CLIENT, agent)))

      expect(Object.fromEntries(sequential)).toEqual({ 200: SEQUENTIAL_REQUESTS })
      const total = new Map<number, number>()
      for (const statuses of concurrent) for (const [status, n] of statuses) total.set(status, (total.get(status) ?? 0) + n)
      expect(Object.fromEntries(total)).toEqual({ 200: CONCURRENT_CLIENTS * PER_CLIENT })
    } finally {
      for (const agent of agents) agent.destroy()
    }
  })

  it('retries an idempotent request once, on a fresh connection, when a reused one closes before answering', async () => {
    // The first request on each connection is answered; any later one is met with a close.
    const upstream = await startRawUpstream((req, socket) => {
      if (req.indexOnConnection === 0) socket.write(responseBytes(200, req.target, { 'Keep-Alive': 'timeout=30' }))
      else socket.destroy()
    })
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([upstream.address])

    const first = await request(proxy.port, { path: '/first', timeoutMs: REQUEST_TIMEOUT_MS })
    const second = await request(proxy.port, { path: '/second', timeoutMs: REQUEST_TIMEOUT_MS })

    expect([first.status, first.body]).toEqual([200, '/first'])
    expect([second.status, second.body]).toEqual([200, '/second'])
    const seconds = upstream.requests.filter((req) => req.target === '/second')
    // Once on the pooled connection of /first, once more on a new connection.
    expect(seconds.map((req) => req.indexOnConnection)).toEqual([1, 0])
    expect(seconds[0].connection).toBe(upstream.requests.find((req) => req.target === '/first')?.connection)
  })

  it('retries only once: a request the fresh connection drops too is a 502', async () => {
    const upstream = await startRawUpstream((req, socket) => {
      if (req.target === '/warm') socket.write(responseBytes(200, req.target, { 'Keep-Alive': 'timeout=30' }))
      else socket.destroy()
    })
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([upstream.address])

    expect((await request(proxy.port, { path: '/warm', timeoutMs: REQUEST_TIMEOUT_MS })).status).toBe(200)
    const doomed = await request(proxy.port, { path: '/doomed', timeoutMs: REQUEST_TIMEOUT_MS })

    expect(doomed.status).toBe(502)
    // The reused connection, then one fresh one; no third attempt.
    expect(upstream.requests.filter((req) => req.target === '/doomed').map((req) => req.indexOnConnection)).toEqual([1, 0])
  })

  it('does not replay a POST that a reused connection dropped', async () => {
    const upstream = await startRawUpstream((req, socket) => {
      if (req.indexOnConnection === 0) socket.write(responseBytes(200, req.target, { 'Keep-Alive': 'timeout=30' }))
      else socket.destroy()
    })
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([upstream.address])

    expect((await request(proxy.port, { path: '/warm', timeoutMs: REQUEST_TIMEOUT_MS })).status).toBe(200)
    const post = await request(proxy.port, { path: '/once', method: 'POST', body: 'payload', timeoutMs: REQUEST_TIMEOUT_MS })

    const posts = upstream.requests.filter((req) => req.target === '/once')
    expect(posts).toHaveLength(1)
    // On a fresh connection it is answered; on the reused one it is lost, and says so.
    expect(post.status).toBe(posts[0].indexOnConnection === 0 ? 200 : 502)
  })
})
