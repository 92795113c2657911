/**
 * The request pipeline of a worker, the same for HTTP and HTTPS, HTTP/1.1 and HTTP/2 (each h2
 * stream is one request; tls-proxy-server.ts adapts them). In order, for each request:
 *   1. read the head in one pass: Host, request id, whether a body follows, and the upstream
 *      headers (hop-by-hop and client claims dropped, X-Forwarded-*, X-Request-Id/-Start set)
 *   2. route: Host → service (404 page when nothing matches); a service that trusts its
 *      clients' forwarding headers (--forward-headers) has the head read again with trust; for
 *      services with automatic certificates, ACME challenges are answered here; TLS services
 *      reached over plain HTTP, and other hosts than a service's canonical host, get one redirect
 *   3. a paused or stopped service: its health-check path is answered 200 here; a stopped
 *      service answers its 503 page, a paused one holds the request (see pause-gate.ts)
 *   4. pick a target of the service (round-robin over the slot its rollout cookie picks; 503
 *      page when it has none) and dispatch through its pool, counting the request in flight;
 *      the request target is sent exactly as the client wrote it. Services with body
 *      buffering or size limits go through a BodyGuard here (body-guard.ts)
 *   5. when the client response closes: abort the upstream request if it is still running,
 *      release the in-flight count, count it in the metrics (with --metrics-port, unless its
 *      path is excluded), write one log line (unless --access-log=false), with the headers the
 *      service logs
 * Error pages are the service's own (deploy --error-pages) once a service is chosen.
 * WebSocket upgrades take steps 1, 2 and 4 (through http-proxy-3; a paused or stopped service
 * answers them 503) and stay in flight until the socket closes. Listeners are shared functions
 * that find their request through its Exchange: no closure is allocated per request.
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import type { BlockList } from 'node:net'
import { isoTime, logBufferedLine } from '../lib/logger'
import { Exchange } from './exchange'
import { sendErrorPage } from './error-pages'
import { clientAddress, isTrustedProxy, readRequestHead, rewriteUpgradeHeaders, type ForwardingContext } from './forwarded-headers'
import { redirectLocation } from './redirects'
import type { ServiceRoute, WorkerRoutes } from './route-table'
import { isExcludedPath, type ServiceMetrics } from './request-metrics'
import { isPath, stripPrefix } from './router'

/** Above the 60 s idle timeout of common load balancers, so they never reuse a closed socket. */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000
/** A client must send its whole request head within this time (slowloris). */
export const HEADERS_TIMEOUT_MS = 10_000
/** How often Node checks connections against the headers timeout. */
const CONNECTIONS_CHECK_INTERVAL_MS = 1_000
const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/'

export interface ProxyServerOptions {
  routes: WorkerRoutes
  trustedProxies: BlockList | undefined
  /** One log line per request. */
  accessLog: boolean
  encrypted: boolean
  /** Where redirects to HTTPS point. */
  httpsPort(): number
}

/** HTTP/1.1 settings of both listeners (tls-proxy-server.ts has the HTTPS one). */
export const SERVER_OPTIONS: http.ServerOptions = {
  // Uploads and streams may legitimately take longer than Node's 300 s default.
  requestTimeout: 0,
  headersTimeout: HEADERS_TIMEOUT_MS,
  connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
  keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
}

export function createProxyServer(options: ProxyServerOptions): http.Server {
  return attachPipeline(http.createServer(SERVER_OPTIONS), options)
}

export function attachPipeline<S extends http.Server>(server: S, options: ProxyServerOptions): S {
  server.on('request', (req, res) => handleRequest(req, res, options, false))
  // With this listener Node does not answer `100 Continue` by itself: the app will.
  server.on('checkContinue', (req, res) => handleRequest(req, res, options, true))
  server.on('upgrade', (req, socket, head) => handleUpgrade(req, socket, head, options))
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
    else socket.destroy()
  })
  return server
}

function handleRequest(req: http.IncomingMessage, res: http.ServerResponse, options: ProxyServerOptions, expectContinue: boolean): void {
  const exchange = new Exchange(req, res, performance.now(), clientAddress(req))
  const forwarding = forwardingContext(exchange.client, options)
  readRequestHead(req.rawHeaders, forwarding, exchange)
  exchange.expectContinue = expectContinue && exchange.hasBody
  res.on('close', options.accessLog ? onResponseCloseLogged : onResponseClose)
  const binding = options.routes.match(exchange.host, req.url!)
  if (!binding) {
    countRequest(exchange, options.routes.unroutedMetrics)
    return sendErrorPage(res, 404)
  }
  const route = binding.service
  exchange.service = route.name
  exchange.pages = route.pages
  exchange.headerLog = route.headerLog
  // Routing needs the Host the first pass reads: only services that trust every client pay for a second.
  if (route.forwardHeaders && !forwarding.trusted) {
    forwarding.trusted = true
    readRequestHead(req.rawHeaders, forwarding, exchange)
  }
  if (binding.prefix !== '/' && route.stripPathPrefix) {
    exchange.path = stripPrefix(req.url!, binding.prefix)
    if (route.scopeCookiePaths) exchange.cookiePrefix = binding.prefix
  }
  exchange.targetTimeoutMs = route.targetTimeoutMs
  // In flight for the metrics from here until the response closes, whatever happens between
  // (a pause that holds the request, a retry): the one start, ended in endExchange.
  if (route.metrics !== undefined && !isExcludedPath(exchange.path, route.excludeMetricsPaths)) countRequest(exchange, route.metrics)
  exchange.bodyRules = route.bodyRules
  if (route.acmeChallenges && req.url!.startsWith(ACME_CHALLENGE_PATH)) return answerChallenge(req, res, options.routes.acmeThumbprint)
  const location = redirectLocation(route, exchange.host, req.url!, options.encrypted, options.httpsPort)
  if (location !== undefined) redirect(exchange, location)
  else if (route.state === 'running') route.dispatch(exchange)
  else serveUnavailable(route, exchange)
}

/**
 * A paused or stopped service. Its health check is answered here, so that a load balancer in
 * front of this machine keeps it; the rest wait (paused) or get the 503 page (stopped).
 */
function serveUnavailable(route: ServiceRoute, exchange: Exchange): void {
  const { req, res } = exchange
  if ((req.method === 'GET' || req.method === 'HEAD') && isPath(exchange.path, route.healthCheckPath)) {
    res.writeHead(200, { 'content-length': 0 })
    res.end()
  } else if (route.gate) {
    route.gate.hold(exchange, route.maxPauseMs)
  } else {
    sendErrorPage(res, 503, route.pages)
  }
}

function countRequest(exchange: Exchange, metrics: ServiceMetrics | undefined): void {
  if (metrics === undefined) return
  exchange.metrics = metrics
  metrics.start()
}

function forwardingContext(client: string, options: ProxyServerOptions): ForwardingContext {
  return { client, encrypted: options.encrypted, trusted: isTrustedProxy(client, options.trustedProxies), receivedAtMs: Date.now() }
}

/**
 * HTTP-01: the key authorization is the token and the account key's thumbprint, so any worker
 * answers without knowing which orders are open. Only well-formed tokens get an answer, and the
 * path never reaches the app nor is redirected.
 */
function answerChallenge(req: http.IncomingMessage, res: http.ServerResponse, thumbprint: string): void {
  const token = (req.url ?? '').slice(ACME_CHALLENGE_PATH.length)
  if (thumbprint === '' || !/^[A-Za-z0-9_-]{16,256}$/.test(token)) return sendErrorPage(res, 404)
  const body = `${token}.${thumbprint}`
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function redirect(exchange: Exchange, location: string): void {
  const headers = { location, 'content-length': '0' }
  exchange.responseHeaders = headers
  exchange.res.writeHead(301, headers)
  exchange.res.end()
}

/** The one place a request leaves flight: its client response closed, finished or cut. */
function endExchange(exchange: Exchange): void {
  if (!exchange.settled) exchange.controller?.abort(new Error('client gone'))
  exchange.owner?.release(exchange)
  exchange.metrics?.finish(exchange.req.method, responseStatus(exchange.res), performance.now() - exchange.startedAt)
}

/** A response cut before it was complete counts as 499, as nginx logs a client that left. */
function responseStatus(res: http.ServerResponse): number {
  return res.writableFinished ? res.statusCode : 499
}

function onResponseClose(this: http.ServerResponse): void {
  const exchange = Exchange.of(this)
  if (exchange) endExchange(exchange)
}

function onResponseCloseLogged(this: http.ServerResponse): void {
  const exchange = Exchange.of(this)
  if (!exchange) return
  endExchange(exchange)
  logRequest(exchange)
}

function handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, options: ProxyServerOptions): void {
  socket.on('error', () => socket.destroy())
  const binding = options.routes.match(req.headers.host, req.url!)
  const route = binding?.service
  if (!route) {
    options.routes.unroutedMetrics?.count(req.method, 404)
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    return
  }
  const location = redirectLocation(route, req.headers.host ?? '', req.url!, options.encrypted, options.httpsPort)
  if (location !== undefined) {
    route.metrics?.count(req.method, 301)
    // Latin-1, as Node writes header values: the request target goes back byte for byte.
    socket.end(`HTTP/1.1 301 Moved Permanently\r\nLocation: ${location}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, 'latin1')
    return
  }
  const target = route.state === 'running' ? route.pick(req) : undefined
  if (!target) {
    // Paused, stopped or without a target: the client's reconnect logic tries again later.
    socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    return
  }
  const forwarding = forwardingContext(clientAddress(req), options)
  forwarding.trusted ||= route.forwardHeaders
  rewriteUpgradeHeaders(req.headers, forwarding)
  // http-proxy-3 sends req.url upstream; the access line at close logs the path the app saw.
  if (binding.prefix !== '/' && route.stripPathPrefix) req.url = stripPrefix(req.url!, binding.prefix)
  const metrics = route.metrics !== undefined && !isExcludedPath(req.url!, route.excludeMetricsPaths) ? route.metrics : undefined
  target.ws(req, socket, head, route.name, route.headerLog, metrics)
}

/** Written by hand rather than with JSON.stringify of an object: this runs for every request. */
function logRequest(exchange: Exchange): void {
  const { req, res } = exchange
  const status = responseStatus(res)
  const duration = Math.round((performance.now() - exchange.startedAt) * 1000) / 1000
  logBufferedLine(`{"time":"${isoTime()}","level":"info","msg":"request","service":${JSON.stringify(exchange.service)}` +
    `,"target":"${exchange.target}","method":${JSON.stringify(req.method ?? '')},"host":${JSON.stringify(exchange.host)}` +
    `,"path":${JSON.stringify(req.url ?? '')},"status":${status},"duration":${duration},"bytes":${exchange.bytes}` +
    `,"client":"${exchange.client}","requestId":${JSON.stringify(exchange.requestId)},"proto":"HTTP/${req.httpVersion}"` +
    `${exchange.headerLog === undefined ? '' : exchange.headerLog.fields(req.rawHeaders, exchange.responseHeaders)}}\n`)
}
