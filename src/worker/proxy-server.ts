/**
 * The request pipeline of a worker, the same for HTTP and HTTPS. In order, for each request:
 *   1. route: Host → service (404 page when nothing matches); for services with automatic
 *      certificates, ACME challenges are answered here; TLS services reached over plain HTTP
 *      are redirected to HTTPS
 *   2. rewrite headers: strip hop-by-hop, set X-Forwarded-*, X-Request-Id
 *   3. pick a target of the service (round-robin) and proxy through its keep-alive agent,
 *      counting the request in flight
 *   4. when the client response closes: release the in-flight count, write one log line (unless
 *      --access-log=false)
 * WebSocket upgrades take steps 1-3 and stay in flight until the socket closes.
 * Listeners are shared functions that find their request through its Exchange: no closure is
 * allocated per request.
 */
import http from 'node:http'
import https from 'node:https'
import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import type { BlockList } from 'node:net'
import { isoTime, logBufferedLine } from '../lib/logger'
import { Exchange } from './exchange'
import { sendErrorPage } from './error-pages'
import { clientAddress, setForwardedHeaders, stripHopByHop } from './forwarded-headers'
import type { WorkerRoutes } from './route-table'
import { hostOnly } from './router'

/** Above the 60 s idle timeout of common load balancers, so they never reuse a closed socket. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000
const HEADERS_TIMEOUT_MS = 60_000
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

const SERVER_OPTIONS: http.ServerOptions = {
  // Uploads and streams may legitimately take longer than Node's 300 s default.
  requestTimeout: 0,
  headersTimeout: HEADERS_TIMEOUT_MS,
  keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
}

export function createProxyServer(options: ProxyServerOptions): http.Server {
  return attachPipeline(http.createServer(SERVER_OPTIONS), options)
}

export function createTlsProxyServer(options: ProxyServerOptions, tlsOptions: https.ServerOptions): https.Server {
  const server = https.createServer({ ...SERVER_OPTIONS, ...tlsOptions })
  // A failed handshake (unknown name, scanner) is the client's problem, not an event to log.
  server.on('tlsClientError', (_err, socket) => socket.destroy())
  return attachPipeline(server, options)
}

function attachPipeline<S extends http.Server>(server: S, options: ProxyServerOptions): S {
  server.on('request', (req, res) => handleRequest(req, res, options))
  server.on('upgrade', (req, socket, head) => handleUpgrade(req, socket, head, options))
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
    else socket.destroy()
  })
  return server
}

function handleRequest(req: http.IncomingMessage, res: http.ServerResponse, options: ProxyServerOptions): void {
  const startedAt = performance.now()
  const client = clientAddress(req)
  const route = options.routes.match(req.headers.host)
  stripHopByHop(req.headers)
  const requestId = setForwardedHeaders(req.headers, { client, encrypted: options.encrypted, trustedProxies: options.trustedProxies })
  const exchange = new Exchange(req, res, route?.name ?? '', startedAt, route?.targetTimeoutMs ?? 0, client, requestId)
  res.on('close', options.accessLog ? onResponseCloseLogged : onResponseClose)
  if (!route) sendErrorPage(res, 404)
  else if (route.acmeChallenges && req.url?.startsWith(ACME_CHALLENGE_PATH)) answerChallenge(req, res, options.routes.acmeThumbprint)
  else if (route.tlsRedirect && !options.encrypted) redirectToHttps(req, res, options.httpsPort())
  else route.pick().web(exchange)
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

function redirectToHttps(req: http.IncomingMessage, res: http.ServerResponse, httpsPort: number): void {
  const host = hostOnly(req.headers.host ?? '')
  const location = `https://${host}${httpsPort === 443 ? '' : `:${httpsPort}`}${req.url ?? '/'}`
  res.writeHead(301, { location, 'content-length': 0 })
  res.end()
}

function onResponseClose(this: http.ServerResponse): void {
  const exchange = Exchange.of(this.req)
  exchange?.owner?.release(exchange)
}

function onResponseCloseLogged(this: http.ServerResponse): void {
  const exchange = Exchange.of(this.req)
  if (!exchange) return
  exchange.owner?.release(exchange)
  logRequest(exchange)
}

function handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, options: ProxyServerOptions): void {
  const route = options.routes.match(req.headers.host)
  if (!route) {
    socket.on('error', () => socket.destroy())
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    return
  }
  const client = clientAddress(req)
  stripHopByHop(req.headers, true)
  setForwardedHeaders(req.headers, { client, encrypted: options.encrypted, trustedProxies: options.trustedProxies })
  route.pick().ws(req, socket, head)
}

/** Written by hand rather than with JSON.stringify of an object: this runs for every request. */
function logRequest(exchange: Exchange): void {
  const { req, res } = exchange
  // A response cut before it was complete is logged as 499, as nginx does for a client that left.
  const status = res.writableFinished ? res.statusCode : 499
  const duration = Math.round((performance.now() - exchange.startedAt) * 1000) / 1000
  logBufferedLine(`{"time":"${isoTime()}","level":"info","msg":"request","service":${JSON.stringify(exchange.service)}` +
    `,"target":"${exchange.target}","method":${JSON.stringify(req.method ?? '')},"host":${JSON.stringify(req.headers.host ?? '')}` +
    `,"path":${JSON.stringify(req.url ?? '')},"status":${status},"duration":${duration},"bytes":${exchange.bytes}` +
    `,"client":"${exchange.client}","requestId":${JSON.stringify(exchange.requestId)}}\n`)
}
