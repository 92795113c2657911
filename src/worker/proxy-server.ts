/**
 * The request pipeline of a worker. In order, for each request:
 *   1. route: Host → service (404 page when nothing matches)
 *   2. pick a target of the service (round-robin)
 *   3. rewrite headers: strip hop-by-hop, set X-Forwarded-*, X-Request-Id
 *   4. proxy through the target's keep-alive agent, counting the request in flight
 *   5. on close: one JSON log line
 * WebSocket upgrades take the same steps 1-4 and stay in flight until the socket closes.
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import type { BlockList } from 'node:net'
import { logBuffered } from '../lib/logger'
import { Exchange } from './exchange'
import { sendErrorPage } from './error-pages'
import { clientAddress, setForwardedHeaders, stripHopByHop } from './forwarded-headers'
import type { WorkerRoutes } from './route-table'

/** Above the 60 s idle timeout of common load balancers, so they never reuse a closed socket. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000
const HEADERS_TIMEOUT_MS = 60_000

export interface ProxyServerOptions {
  routes: WorkerRoutes
  trustedProxies: BlockList | undefined
  encrypted: boolean
}

export function createProxyServer(options: ProxyServerOptions): http.Server {
  const server = http.createServer({
    // Uploads and streams may legitimately take longer than Node's 300 s default.
    requestTimeout: 0,
    headersTimeout: HEADERS_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  })
  server.on('request', (req, res) => handleRequest(req, res, options))
  server.on('upgrade', (req, socket, head) => handleUpgrade(req, socket, head, options))
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
    else socket.destroy()
  })
  return server
}

export function handleRequest(req: http.IncomingMessage, res: http.ServerResponse, options: ProxyServerOptions): void {
  const startedAt = performance.now()
  const client = clientAddress(req)
  const route = options.routes.match(req.headers.host)
  if (!route) {
    sendErrorPage(res, 404)
    logRequest(req, res, startedAt, client, '', '', '', 0)
    return
  }
  stripHopByHop(req.headers)
  const requestId = setForwardedHeaders(req.headers, { client, encrypted: options.encrypted, trustedProxies: options.trustedProxies })
  const exchange = new Exchange(req, res, route.name, startedAt, route.targetTimeoutMs, client, requestId)
  res.once('close', () => logRequest(req, res, startedAt, client, route.name, exchange.target, requestId, exchange.bytes))
  route.pick().web(exchange)
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

function logRequest(
  req: http.IncomingMessage, res: http.ServerResponse, startedAt: number, client: string,
  service: string, target: string, requestId: string, bytes: number,
): void {
  logBuffered('info', 'request', {
    service,
    target,
    method: req.method,
    host: req.headers.host,
    path: req.url,
    // A response cut before it was complete is logged as 499, as nginx does for a client that left.
    status: res.writableFinished ? res.statusCode : 499,
    duration: Math.round((performance.now() - startedAt) * 1000) / 1000,
    bytes,
    client,
    requestId,
  })
}
