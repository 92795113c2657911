/**
 * HTTP/2 requests and responses shaped for the request pipeline, which was written for HTTP/1.1
 * and proxies to HTTP/1.1 upstreams. Node's compatibility classes already offer the members the
 * pipeline uses (url, method, complete, rawHeaders, httpVersion, writeHead, write + 'drain',
 * end, destroy, 'close'); these subclasses fix the differences at the edge, once per stream:
 *
 * - the raw headers are given as an HTTP/1.1 request would have them: Host from `:authority`,
 *   no pseudo-header fields, one Cookie field (RFC 9113 §8.3.1, §8.2.3), and a body that is not
 *   announced by Content-Length (HTTP/2 frames it itself) announced as chunked, so that they go
 *   upstream through the same one-pass rewriting as HTTP/1.1 headers;
 * - a status message (HTTP/2 has none) is dropped instead of raising a process warning;
 * - `destroyed` tells whether the stream is gone, as it does for an HTTP/1.1 response.
 *
 * Connection-specific response fields never reach Node's HTTP/2 layer, which throws on them:
 * the pipeline strips hop-by-hop fields, and the one it may add (`Connection: close` while the
 * worker stops) is dropped by the compatibility layer; a stopping worker sends GOAWAY instead.
 */
import type http from 'node:http'
import http2 from 'node:http2'
import type { ReadableOptions } from 'node:stream'

const COLON = 0x3a

export class ProxiedH2Request extends http2.Http2ServerRequest {
  constructor(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, options: ReadableOptions, rawHeaders: readonly string[]) {
    // A request without a body ends its stream with its headers.
    super(stream, headers, options, http1RawHeaders(rawHeaders, !stream.endAfterHeaders))
    // For code that reads `req.headers.host` (as for HTTP/1.1 requests).
    if (headers.host === undefined && headers[':authority'] !== undefined) headers.host = headers[':authority']
  }
}

export class ProxiedH2Response extends http2.Http2ServerResponse {
  override writeHead(statusCode: number, messageOrHeaders?: string | http2.OutgoingHttpHeaders | readonly string[], headers?: http2.OutgoingHttpHeaders | readonly string[]): this {
    const fields = typeof messageOrHeaders === 'string' || messageOrHeaders === undefined ? headers : messageOrHeaders
    return super.writeHead(statusCode, fields)
  }
}

// The compatibility response is a legacy Stream without `destroyed` (its type says Writable).
Object.defineProperty(ProxiedH2Response.prototype, 'destroyed', {
  get(this: ProxiedH2Response): boolean {
    return this.stream.destroyed
  },
})

/**
 * What the pipeline uses of a client request and response besides their events. It is typed
 * with the HTTP/1.1 classes; these checks stop compiling if the HTTP/2 ones no longer fit.
 */
interface PipelineRequest {
  readonly method?: string
  readonly url?: string
  readonly rawHeaders: string[]
  readonly headers: http.IncomingHttpHeaders
  readonly complete: boolean
  readonly httpVersion: string
  readonly socket: { remoteAddress?: string }
  pipe: http.IncomingMessage['pipe']
}
interface PipelineResponse {
  readonly statusCode: number
  readonly headersSent: boolean
  readonly writableEnded: boolean
  readonly writableFinished: boolean
  readonly destroyed: boolean
  writeHead(statusCode: number, statusMessage: string | undefined, headers: string[]): unknown
  write(chunk: Buffer): boolean
  end(): unknown
  end(chunk: Buffer | string): unknown
  destroy(error?: Error): unknown
  writeContinue(): unknown
}
type Fits<T extends Contract, Contract> = T
export type RequestsFit = Fits<http.IncomingMessage, PipelineRequest> | Fits<ProxiedH2Request, PipelineRequest>
export type ResponsesFit = Fits<http.ServerResponse, PipelineResponse> | Fits<ProxiedH2Response, PipelineResponse>

/**
 * An HTTP/2 request's flat `[name, value, ...]` header list as the equivalent HTTP/1.1 request
 * carries it: Host first (from `:authority`, else the request's own Host field), the other
 * fields in order, the cookie crumbs of the request joined into one Cookie field, and, for a
 * request with a body but no Content-Length, `Transfer-Encoding: chunked`.
 */
export function http1RawHeaders(raw: readonly string[], hasBody: boolean): string[] {
  const out = ['host', '']
  let authority: string | undefined
  let host: string | undefined
  let cookie: string | undefined
  let contentLength = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    const value = raw[i + 1]
    if (name.charCodeAt(0) === COLON) {
      if (name === ':authority') authority = value
    } else if (name === 'host') {
      host ??= value
    } else if (name === 'cookie') {
      cookie = cookie === undefined ? value : `${cookie}; ${value}`
    } else {
      contentLength ||= name === 'content-length'
      out.push(name, value)
    }
  }
  const effectiveHost = authority ?? host
  if (effectiveHost === undefined) out.splice(0, 2)
  else out[1] = effectiveHost
  if (cookie !== undefined) out.push('cookie', cookie)
  if (hasBody && !contentLength) out.push('transfer-encoding', 'chunked')
  return out
}
