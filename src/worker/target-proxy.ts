/**
 * Proxying to one upstream address: an undici pool for plain requests (keep-alive, bounded
 * connections, streaming both ways), http-proxy-3 for upgrades, and what is in flight, which is
 * what a drain waits for.
 */
import http from 'node:http'
import type { Duplex, Readable } from 'node:stream'
import { performance } from 'node:perf_hooks'
import type { createProxyServer } from 'http-proxy-3'
import type { Dispatcher, Pool as PoolClass } from 'undici'
import { MproxyError } from '../errors'
import { isoTime, log, logBufferedLine } from '../lib/logger'
import { sendUnderRules } from './body-guard'
import { isPoolableTarget, sendOneOffRequest } from './one-off-request'
import { uploadBody, type UpstreamBody } from './upload-body'
import { upstreamConnector } from './upstream-socket'
import { type Exchange, type ExchangeOwner } from './exchange'
import { sendErrorPage } from './error-pages'
import type { HeaderLog, HeaderValues } from './header-log'
import { InflightList } from './inflight-list'
import { closeAfterAnswer } from './lingering-close'
import { classifyProxyError, isRetryable, upstreamErrorKind } from './proxy-errors'
import type { ServiceMetrics } from './request-metrics'

/** Idle upstream connections are closed before a typical upstream (Node: 5 s) would close them. */
const UPSTREAM_KEEP_ALIVE_MS = 4_000
/** Connections per target and worker; requests beyond them wait in the pool's queue. */
const MAX_CONNECTIONS = 256
const CONNECT_TIMEOUT_MS = 10_000

/** On an upgraded client socket: where its upstream errors are counted. */
const UPGRADE_METRICS = Symbol('mproxy.upgradeMetrics')
type MeteredSocket = Duplex & { [UPGRADE_METRICS]?: ServiceMetrics }
/** On an upgrade whose service logs response headers: the upstream's 101 headers, once received. */
const UPGRADE_RESPONSE_HEADERS = Symbol('mproxy.upgradeResponseHeaders')
type UpgradeRequest = http.IncomingMessage & { [UPGRADE_RESPONSE_HEADERS]?: HeaderValues | null }

type WsProxy = ReturnType<typeof createProxyServer<typeof http.IncomingMessage, typeof http.ServerResponse, Error>>

// Memory: undici's index loads fetch, WebSocket and caches too (13 MiB per worker); only its Pool
// is needed. http-proxy-3 (16 MiB) is loaded by the first upgrade a worker proxies.
const Pool = require('undici/lib/dispatcher/pool') as typeof PoolClass

export interface UpstreamSettings {
  /** A response whose upstream sends nothing for this long is cut. */
  responseIdleTimeoutMs: number
  accessLog: boolean
}

export interface TargetProxyEvents {
  /** The in-flight count changed. */
  onCountChange(target: TargetProxy): void
  /** True while the worker shuts down: answers then carry `Connection: close`. */
  closingClientConnections(): boolean
  /** Where a retried request goes now (the route may have switched since it started). */
  reroute(exchange: Exchange): TargetProxy | undefined
}

export class TargetProxy implements ExchangeOwner {
  readonly address: string
  /** Set from the service at each table: see `retire`. */
  drainWebSockets = false
  readonly #events: TargetProxyEvents
  readonly #settings: UpstreamSettings
  readonly #inflight = new InflightList<Exchange>()
  /** Upgraded connections, with the service each belongs to. */
  readonly #sockets = new Map<Duplex, string>()
  #pool: PoolClass
  #wsProxy: WsProxy | undefined
  #retired = false

  constructor(address: string, events: TargetProxyEvents, settings: UpstreamSettings) {
    this.address = address
    this.#events = events
    this.#settings = settings
    this.#pool = this.#createPool()
  }

  get inflight(): number {
    return this.#inflight.size + this.#sockets.size
  }

  get retired(): boolean {
    return this.#retired
  }

  web(exchange: Exchange): void {
    exchange.target = this.address
    exchange.owner = this
    this.#inflight.add(exchange)
    this.#events.onCountChange(this)
    if (exchange.bodyRules !== undefined) return sendUnderRules(exchange, this)
    this.send(exchange, exchange.hasBody ? exchange.req : null, exchange)
  }

  /**
   * Sends a request counted in flight here. `body` is the client's stream (passed on as it
   * arrives), a buffered body, or null; `handler` gets the answer (the exchange, or its guard).
   */
  send(exchange: Exchange, body: UpstreamBody, handler: Dispatcher.DispatchHandler): void {
    if (exchange.retries > 0 || exchange.expectContinue || !isPoolableTarget(exchange.path)) return sendOneOffRequest(exchange, this.address, body, handler)
    this.#pool.dispatch({
      path: exchange.path,
      method: exchange.req.method!,
      headers: exchange.upstreamHeaders,
      // undici takes async iterables as bodies too; its types list only streams.
      body: (body === exchange.req ? uploadBody(exchange.req) : body) as Readable | Buffer | null,
      // The target timeout runs from the end of the upload (expireSlowRequests), not from here.
      headersTimeout: 0,
      bodyTimeout: this.#settings.responseIdleTimeoutMs,
    }, handler)
  }

  /**
   * A request held in this worker while its body arrived (request buffering) goes where its
   * service routes now if this target was retired meanwhile. True when it moved.
   */
  moveIfRetired(exchange: Exchange): boolean {
    if (!this.#retired) return false
    const target = this.#events.reroute(exchange)
    if (!target || target === this) return false
    this.release(exchange)
    target.web(exchange)
    return true
  }

  release(exchange: Exchange): void {
    if (this.#inflight.remove(exchange)) this.#events.onCountChange(this)
  }

  closingClientConnections(): boolean {
    return this.#events.closingClientConnections()
  }

  failed(exchange: Exchange, err: Error): void {
    const res = exchange.res
    if (res.destroyed) return
    // Headers are out: the only honest way to end is closing the client's connection.
    if (exchange.responded) {
      exchange.metrics?.upstreamError(upstreamErrorKind(err, exchange.abortReason))
      res.destroy()
      return
    }
    if (isRetryable(exchange, err)) {
      const target = this.#events.reroute(exchange)
      if (target) {
        exchange.resetForRetry()
        this.release(exchange)
        target.web(exchange)
        return
      }
    }
    const status = classifyProxyError(err as NodeJS.ErrnoException, exchange.abortReason !== undefined)
    // mproxy's own failures (body limits and buffers) are logged where they happen (body-guard.ts).
    if (!(err instanceof MproxyError)) {
      exchange.metrics?.upstreamError(upstreamErrorKind(err, exchange.abortReason))
      log(status === 504 ? 'warn' : 'error', 'upstream error', {
        target: this.address, service: exchange.service, path: exchange.req.url, status,
        error: exchange.abortReason !== undefined ? err.message : (err as NodeJS.ErrnoException).code ?? err.message,
        requestId: exchange.requestId,
      })
    }
    // The rest of an upload will not be read: the connection closes after the answer.
    if (exchange.hasBody && !exchange.req.complete) closeAfterAnswer(exchange.req, res)
    sendErrorPage(res, status, exchange.pages)
  }

  /** Proxies an upgrade; `metrics` counts it in flight until it closes, then as a 101. */
  ws(req: http.IncomingMessage, socket: Duplex, head: Buffer, service: string, headerLog: HeaderLog | undefined, metrics?: ServiceMetrics): void {
    const startedAt = performance.now()
    if (metrics) {
      metrics.start()
      ;(socket as MeteredSocket)[UPGRADE_METRICS] = metrics
    }
    socket.on('error', (err) => log('debug', 'websocket client error', { target: this.address, error: err.message }))
    this.#sockets.set(socket, service)
    // Once one side has ended the connection it is over: no half-open socket is kept waiting
    // for the client's own end.
    socket.once('finish', () => socket.destroy())
    socket.once('close', () => {
      this.#sockets.delete(socket)
      this.#events.onCountChange(this)
      metrics?.finish(req.method, 101)
      if (this.#settings.accessLog) logUpgrade(req, socket, service, this.address, startedAt, headerLog)
    })
    if (headerLog?.logsResponses) (req as UpgradeRequest)[UPGRADE_RESPONSE_HEADERS] = null
    this.#events.onCountChange(this)
    this.#wsProxy ??= this.#createWsProxy()
    this.#wsProxy.ws(req, socket, head)
  }

  /** Aborts requests whose upstream has not answered within their target timeout. */
  expireSlowRequests(now: number): void {
    this.#inflight.forEach((exchange) => {
      if (!exchange.responded && !exchange.headHeld && exchange.sentAt !== 0 && now - exchange.sentAt > exchange.targetTimeoutMs) exchange.abort('timeout')
    })
  }

  /**
   * No longer routed to: idle pooled connections close now, busy ones after their request.
   * Upgraded connections are closed at once (their clients reconnect, to the new target),
   * unless the service drains them like requests.
   */
  retire(): void {
    this.#retired = true
    this.#pool.close().catch(() => {})
    if (!this.drainWebSockets) for (const socket of this.#sockets.keys()) socket.destroy()
  }

  /** Closes the upgraded connections of one service (paused or stopped, they would keep its app busy). */
  closeWebSockets(service: string): void {
    for (const [socket, owner] of this.#sockets) if (owner === service) socket.destroy()
  }

  /** Routed to again (redeployed while still draining). */
  revive(): void {
    this.#retired = false
    if (this.#pool.closed) this.#pool = this.#createPool()
  }

  /**
   * End of a drain: what is still in flight (of `service` only, if given) is cut, with a 504
   * where nothing was sent yet.
   */
  cut(service?: string): void {
    this.#inflight.forEach((exchange) => {
      if (service === undefined || exchange.service === service) exchange.abort('drain')
    })
    for (const [socket, owner] of this.#sockets) if (service === undefined || owner === service) socket.destroy()
  }

  destroy(): void {
    this.cut()
    this.#pool.destroy().catch(() => {})
  }

  // Private

  #createPool(): PoolClass {
    return new Pool(`http://${this.address}`, {
      connections: MAX_CONNECTIONS,
      keepAliveTimeout: UPSTREAM_KEEP_ALIVE_MS,
      connect: upstreamConnector(CONNECT_TIMEOUT_MS),
    })
  }

  #createWsProxy(): WsProxy {
    const { createProxyServer: create } = require('http-proxy-3') as { createProxyServer: typeof createProxyServer }
    const proxy = create<typeof http.IncomingMessage, typeof http.ServerResponse, Error>({ target: new URL(`http://${this.address}`), xfwd: false })
    proxy.on('error', (err, req, socket) => {
      log('warn', 'websocket error', { target: this.address, path: req?.url, error: (err as Error).message })
      if (!socket || !('destroy' in socket)) return
      ;(socket as MeteredSocket)[UPGRADE_METRICS]?.upstreamError(upstreamErrorKind(err as NodeJS.ErrnoException, undefined))
      ;(socket as Duplex).destroy()
    })
    proxy.on('proxyReqWs', (proxyReq: http.ClientRequest, req: UpgradeRequest) => {
      if (req[UPGRADE_RESPONSE_HEADERS] !== null) return
      proxyReq.once('upgrade', (res: http.IncomingMessage) => { req[UPGRADE_RESPONSE_HEADERS] = res.headers })
    })
    proxy.on('open', (upstream: Duplex) => {
      upstream.on('error', (err) => log('debug', 'websocket upstream error', { target: this.address, error: err.message }))
    })
    return proxy
  }
}

/** One line per upgraded connection, at its close: how long it lasted and the bytes each way. */
function logUpgrade(req: UpgradeRequest, socket: Duplex, service: string, target: string, startedAt: number, headerLog: HeaderLog | undefined): void {
  const net = socket as Duplex & { bytesWritten?: number; bytesRead?: number }
  const duration = Math.round((performance.now() - startedAt) * 1000) / 1000
  const line = JSON.stringify({
    time: isoTime(), level: 'info', msg: 'request', service, target, method: req.method, host: req.headers.host ?? '',
    path: req.url, status: 101, duration, bytes: net.bytesWritten ?? 0, bytesIn: net.bytesRead ?? 0,
    client: req.socket.remoteAddress ?? '', requestId: req.headers['x-request-id'] ?? '', upgrade: req.headers.upgrade ?? '',
    proto: `HTTP/${req.httpVersion}`,
  })
  // The service's header fields go last, as in the lines of plain requests.
  const fields = headerLog === undefined ? '' : headerLog.fields(req.rawHeaders, req[UPGRADE_RESPONSE_HEADERS] ?? undefined)
  logBufferedLine(`${line.slice(0, -1)}${fields}}\n`)
}
