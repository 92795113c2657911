/**
 * Proxying to one upstream address: a keep-alive agent, an http-proxy-3 server, and the set of
 * requests and upgraded sockets in flight, which is what a drain waits for.
 */
import http from 'node:http'
import type { Duplex } from 'node:stream'
import { createProxyServer } from 'http-proxy-3'
import { log } from '../lib/logger'
import { Exchange, type ExchangeOwner } from './exchange'
import { sendErrorPage } from './error-pages'
import { classifyProxyError } from './proxy-errors'
import { clearHopByHop } from './forwarded-headers'

/** Idle upstream sockets are closed before a typical upstream (Node: 5 s) would close them. */
const UPSTREAM_IDLE_TIMEOUT_MS = 4_000
const MAX_FREE_SOCKETS = 256

export interface TargetProxyEvents {
  /** The in-flight count changed. */
  onCountChange(target: TargetProxy): void
  /** True while the worker shuts down: answers then carry `Connection: close`. */
  closingClientConnections(): boolean
}

export class TargetProxy implements ExchangeOwner {
  readonly address: string
  readonly #agent: http.Agent
  readonly #proxy: ReturnType<typeof createProxyServer>
  readonly #exchanges = new Set<Exchange>()
  readonly #sockets = new Set<Duplex>()
  readonly #events: TargetProxyEvents
  #retired = false

  constructor(address: string, events: TargetProxyEvents) {
    this.address = address
    this.#events = events
    this.#agent = new http.Agent({ keepAlive: true, timeout: UPSTREAM_IDLE_TIMEOUT_MS, maxFreeSockets: MAX_FREE_SOCKETS, scheduling: 'lifo' })
    // A parsed URL, so http-proxy-3 does not parse the target again for every request.
    this.#proxy = createProxyServer({ target: new URL(`http://${address}`), agent: this.#agent, xfwd: false })
    this.#proxy.on('proxyReq', onUpstreamRequest)
    this.#proxy.on('proxyRes', (proxyRes, req, res) => this.#onResponse(proxyRes, req, res))
    // Errors of upgraded sockets arrive here; web requests pass their own callback.
    this.#proxy.on('error', (err, req, socket) => {
      log('warn', 'websocket error', { target: address, path: req?.url, error: (err as Error).message })
      if (socket && 'destroy' in socket) (socket as Duplex).destroy()
    })
    this.#proxy.on('open', (upstream: Duplex) => {
      upstream.on('error', (err) => log('debug', 'websocket upstream error', { target: address, error: err.message }))
    })
  }

  get inflight(): number {
    return this.#exchanges.size + this.#sockets.size
  }

  get retired(): boolean {
    return this.#retired
  }

  web(exchange: Exchange): void {
    exchange.target = this.address
    exchange.owner = this
    this.#exchanges.add(exchange)
    this.#events.onCountChange(this)
    this.#proxy.web(exchange.req, exchange.res, onProxyError)
  }

  /** The client response closed: the request is no longer in flight here. */
  release(exchange: Exchange): void {
    if (this.#exchanges.delete(exchange)) this.#events.onCountChange(this)
  }

  ws(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => log('debug', 'websocket client error', { target: this.address, error: err.message }))
    this.#sockets.add(socket)
    socket.once('close', () => {
      this.#sockets.delete(socket)
      this.#events.onCountChange(this)
    })
    this.#events.onCountChange(this)
    this.#proxy.ws(req, socket, head)
  }

  /** Aborts requests whose upstream has not answered within their target timeout. */
  expireSlowRequests(now: number): void {
    for (const exchange of this.#exchanges) {
      if (!exchange.responded && exchange.abortReason === undefined && now - exchange.startedAt > exchange.targetTimeoutMs) {
        abort(exchange, 'timeout')
      }
    }
  }

  /** No longer routed to: stop pooling its connections, so none outlives the drain. */
  retire(): void {
    this.#retired = true
    this.#agent.maxFreeSockets = 0
    for (const sockets of Object.values(this.#agent.freeSockets)) sockets?.forEach((socket) => socket.destroy())
  }

  /** Routed to again (redeployed while still draining). */
  revive(): void {
    this.#retired = false
    this.#agent.maxFreeSockets = MAX_FREE_SOCKETS
  }

  /** End of a drain: whatever is still in flight is cut, with a 504 where nothing was sent yet. */
  cut(): void {
    for (const exchange of this.#exchanges) abort(exchange, 'drain')
    for (const socket of this.#sockets) socket.destroy()
  }

  destroy(): void {
    this.cut()
    this.#agent.destroy()
  }

  // Private

  #onResponse(proxyRes: http.IncomingMessage, req: http.IncomingMessage, res: http.ServerResponse): void {
    const exchange = Exchange.of(req)
    if (exchange) {
      exchange.responded = true
      const length = proxyRes.headers['content-length']
      if (length !== undefined) exchange.bytes = Number(length)
      else proxyRes.on('data', (chunk: Buffer) => { exchange.bytes += chunk.length })
    }
    const headers = proxyRes.headers
    clearHopByHop(headers)
    // http-proxy-3 copies this onto the client response: decide it for the client's connection,
    // which Node parsed before the request's own Connection header was stripped.
    headers.connection = this.#events.closingClientConnections() || !res.shouldKeepAlive ? 'close' : 'keep-alive'
  }
}

function onUpstreamRequest(proxyReq: http.ClientRequest, req: http.IncomingMessage): void {
  const exchange = Exchange.of(req)
  if (exchange) exchange.proxyReq = proxyReq
}

function abort(exchange: Exchange, reason: 'timeout' | 'drain'): void {
  exchange.abortReason = reason
  if (exchange.proxyReq) exchange.proxyReq.destroy()
  else sendErrorPage(exchange.res, 504)
}

function onProxyError(err: unknown, req: http.IncomingMessage, res: http.ServerResponse | Duplex): void {
  const exchange = Exchange.of(req)
  const error = err as NodeJS.ErrnoException
  const status = classifyProxyError(error, { clientGone: res.destroyed, abortedByProxy: exchange?.abortReason !== undefined })
  if (status === 499 || !(res instanceof http.ServerResponse)) {
    res.destroy()
    return
  }
  log(status === 504 ? 'warn' : 'error', 'upstream error', {
    target: exchange?.target, service: exchange?.service, path: req.url, status,
    error: exchange?.abortReason === 'timeout' ? 'no response within the target timeout'
      : exchange?.abortReason === 'drain' ? 'cut at the end of the drain timeout' : error.code ?? error.message,
    requestId: exchange?.requestId,
  })
  sendErrorPage(res, status)
}
