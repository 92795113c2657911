/**
 * The HTTPS listener of a worker: one TLS server that speaks HTTP/2 to clients that negotiate
 * `h2` by ALPN and HTTP/1.1 to the others (Node's HTTP/2 server with `allowHTTP1`). Both feed
 * the same request pipeline (proxy-server.ts); upstreams are always spoken to in HTTP/1.1.
 *
 * HTTP/1.1 connections keep their own rules (keep-alive, header timeout, upgrades: WebSockets
 * stay on HTTP/1.1, as no extended CONNECT is offered). HTTP/2 sessions get the equivalent ones:
 * - a session must open its first stream within the header timeout, and one that has nothing
 *   to do for the keep-alive timeout is closed gracefully (GOAWAY, open streams finish);
 * - at most MAX_CONCURRENT_STREAMS streams at a time per session;
 * - when the worker stops, every session gets a GOAWAY at once: the client sends new requests
 *   over a new connection (to another worker), streams already open finish within the
 *   shutdown timeout, and the session closes when its last stream ends.
 * Each stream is one request of the pipeline: counted in flight, drained and logged like an
 * HTTP/1.1 request.
 */
import http from 'node:http'
import http2 from 'node:http2'
import type tls from 'node:tls'
import { attachPipeline, HEADERS_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS, SERVER_OPTIONS, type ProxyServerOptions } from './proxy-server'
import { ProxiedH2Request, ProxiedH2Response } from './h2-messages'

/** A TLS client must complete its handshake within this time. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000
/** Streams one HTTP/2 session may have open at once (nginx's default; browsers open far fewer). */
export const MAX_CONCURRENT_STREAMS = 128

/** What the worker passes through to the TLS layer: certificate selection and ticket keys. */
export type TlsListenerOptions = Pick<tls.TlsOptions, 'SNICallback' | 'ticketKeys'>

export class TlsProxyServer {
  readonly server: http2.Http2SecureServer
  readonly #sessions = new Set<http2.ServerHttp2Session>()
  #stopping = false

  constructor(options: ProxyServerOptions, tlsOptions: TlsListenerOptions) {
    this.server = http2.createSecureServer({
      ...SERVER_OPTIONS,
      ...tlsOptions,
      allowHTTP1: true,
      handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
      // As https.Server does: small answers are not held back waiting for an ACK.
      noDelay: true,
      settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: http.maxHeaderSize },
      Http2ServerRequest: ProxiedH2Request,
      Http2ServerResponse: ProxiedH2Response,
    })
    // A failed handshake (unknown name, scanner, timeout) is the client's problem, not an event to log.
    this.server.on('tlsClientError', (_err, socket) => socket.destroy())
    this.server.on('session', (session) => this.#track(session))
    // HTTP/1.1 connections emit the events of http.Server, HTTP/2 streams 'request' and
    // 'checkContinue' with the compatibility classes: see h2-messages.ts for why the pipeline
    // may take those as HTTP/1.1 messages.
    attachPipeline(this.#http1(), options)
  }

  /**
   * The worker stops: GOAWAY on every HTTP/2 session (and on any that completes its handshake
   * from now on). HTTP/1.1 connections are told with `Connection: close` by the pipeline.
   */
  stopAdmitting(): void {
    this.#stopping = true
    for (const session of this.#sessions) session.close()
  }

  /** Closes HTTP/1.1 connections that carry no request; idle sessions close by themselves. */
  closeIdleConnections(): void {
    http.Server.prototype.closeIdleConnections.call(this.#http1())
  }

  /** The end of the shutdown timeout: every connection is cut, whatever it carries. */
  closeAllConnections(): void {
    http.Server.prototype.closeAllConnections.call(this.#http1())
    for (const session of this.#sessions) session.destroy()
  }

  // Private

  /** With `allowHTTP1`, the server tracks its HTTP/1.1 connections as http.Server does. */
  #http1(): http.Server {
    return this.server as unknown as http.Server
  }

  #track(session: http2.ServerHttp2Session): void {
    if (this.#stopping) {
      session.close()
      return
    }
    this.#sessions.add(session)
    session.once('close', () => this.#sessions.delete(session))
    session.setTimeout(HEADERS_TIMEOUT_MS, closeSession)
    session.once('stream', keepSessionAlive)
  }
}

/** After its first stream, a session may stay idle as long as an HTTP/1.1 keep-alive connection. */
function keepSessionAlive(this: http2.ServerHttp2Session): void {
  this.setTimeout(KEEP_ALIVE_TIMEOUT_MS)
}

/** GOAWAY: streams still open finish; a session without any closes now. */
function closeSession(this: http2.ServerHttp2Session): void {
  this.close()
}
