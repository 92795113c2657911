/**
 * One proxied request, from the client's head to the end of its response. It is the upstream
 * client's handler (undici's dispatch API): response chunks are written straight to the client
 * response, with backpressure both ways, and no stream is built around them.
 *
 * It is also a node of its target's in-flight list (`prev`/`next`), so counting a request costs
 * no allocation and keeps nothing alive after it ends.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import type { BufferingOptions } from '../options'
import type { BodyGuard } from './body-guard'
import { scopeCookies } from './cookie-scope'
import { BUILT_IN_PAGES, type ErrorPages } from './error-pages'
import { clientResponseHeaders, type RequestHead } from './forwarded-headers'
import type { ServiceMetrics } from './request-metrics'
import type { HeaderLog, HeaderValues } from './header-log'
import { closeAfterAnswer } from './lingering-close'
import { applyWriterAffinity } from './read-split'
import { hostOnly } from './router'

const EXCHANGE = Symbol('mproxy.exchange')
type Tagged = { [EXCHANGE]?: Exchange }

/** Why mproxy itself ended an upstream request: the answer is then 504, or a cut. */
export type AbortReason = 'timeout' | 'drain'

/** Where an exchange reports the end of its upstream request. */
export interface ExchangeOwner {
  /** The upstream request failed; `exchange.responded` tells whether the client saw a head. */
  failed(exchange: Exchange, err: Error): void
  /** The client response closed (finished or cut): the request is no longer in flight. */
  release(exchange: Exchange): void
  /** True while answers must carry `Connection: close` (the worker is stopping). */
  closingClientConnections(): boolean
}

export class Exchange implements Dispatcher.DispatchHandler, RequestHead {
  host = ''
  /** The request target sent upstream: the client's, with a service's path prefix stripped. */
  path: string
  /** Set when cookies the app sets for the host are scoped under this path prefix. */
  cookiePrefix: string | undefined = undefined
  requestId = ''
  hasBody = false
  upstreamHeaders: string[] = []
  /** The client sent `Expect: 100-continue`: the app decides whether the upload starts. */
  expectContinue = false
  /** The service that routed it ('' for mproxy's own answers). */
  service = ''
  /** The error pages of that service. */
  pages: ErrorPages = BUILT_IN_PAGES
  /** While a paused service holds it: when its max pause ends (performance.now() time). */
  heldUntil = 0
  /** The headers its service logs, if any. */
  headerLog: HeaderLog | undefined = undefined
  /** The response head's headers, once there is one (the upstream's, or mproxy's redirect). */
  responseHeaders: HeaderValues | undefined = undefined
  targetTimeoutMs = 0
  /** Writer affinity of its service in ms (see read-split.ts); 0 when off. */
  writerAffinityMs = 0
  /** Body buffering and size limits of its service; undefined for a service without any (most). */
  bodyRules: BufferingOptions | undefined = undefined
  /** What applies them, from the first dispatch on (see body-guard.ts). */
  guard: BodyGuard | undefined = undefined
  /** The target address it went to. */
  target = ''
  /** Where it is counted: unset while metrics are off, and for excluded paths. */
  metrics: ServiceMetrics | undefined = undefined
  owner: ExchangeOwner | undefined = undefined
  controller: Dispatcher.DispatchController | undefined = undefined
  /** When the request, body included, was fully sent upstream (0 until then). */
  sentAt = 0
  /** The upstream answered: its head is written to the client. */
  responded = false
  /** The upstream answered, but its head is held back until its body is complete (response buffering). */
  headHeld = false
  /** The upstream request ended (completed or failed). */
  settled = false
  abortReason: AbortReason | undefined = undefined
  /** Retries after a stale pooled connection dropped the request: one at most. */
  retries = 0
  /** Response body bytes sent to the client. */
  bytes = 0
  // In-flight list links (see InflightList).
  prev: Exchange | undefined = undefined
  next: Exchange | undefined = undefined

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly startedAt: number,
    readonly client: string,
  ) {
    this.path = req.url!
    ;(res as Tagged)[EXCHANGE] = this
  }

  /** The exchange of a client response. */
  static of(res: ServerResponse): Exchange | undefined {
    return (res as Tagged)[EXCHANGE]
  }

  /** Ends the upstream request on mproxy's own account (target timeout, drain cut). */
  abort(reason: AbortReason): void {
    if (this.settled || this.abortReason !== undefined) return
    this.abortReason = reason
    if (this.responded) this.res.destroy()
    else this.controller?.abort(new Error(reason === 'timeout' ? 'no response within the target timeout' : 'cut at the end of the drain timeout'))
  }

  /** A new attempt starts from a clean handler state. */
  resetForRetry(): void {
    this.retries++
    this.controller = undefined
    this.sentAt = 0
    this.settled = false
  }

  // undici's handler

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    // Aborted (timeout, drain, client gone) before the upstream client got to it.
    if (this.abortReason !== undefined || this.res.destroyed) controller.abort(new Error('request ended before it was sent'))
  }

  onRequestSent(): void {
    this.sentAt = performance.now()
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    // 1xx answers are informational; Node's server has already answered 100-continue.
    if (statusCode < 200) return
    const res = this.res
    if (res.destroyed) return controller.abort(new Error('client gone'))
    // An upload the upstream did not wait for is still arriving: that connection cannot be reused.
    const uploading = this.hasBody && !this.req.complete
    if (uploading) closeAfterAnswer(this.req, res)
    const close = uploading || this.owner!.closingClientConnections()
    if (this.cookiePrefix !== undefined && headers['set-cookie']) {
      headers['set-cookie'] = scopeCookies(headers['set-cookie'], this.cookiePrefix, hostOnly(this.host))
    }
    if (this.writerAffinityMs > 0) applyWriterAffinity(headers, this.req.method, this.writerAffinityMs, Date.now())
    // Throws on a header Node will not send: the upstream client then reports a 502.
    res.writeHead(statusCode, statusMessage || undefined, clientResponseHeaders(headers, close) as unknown as string[])
    this.responseHeaders = headers
    this.responded = true
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytes += chunk.length
    if (!this.res.write(chunk)) {
      controller.pause()
      this.res.once('drain', resumeUpstream)
    }
  }

  onResponseEnd(): void {
    this.settled = true
    this.res.end()
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.settled = true
    this.owner!.failed(this, err)
  }
}

function resumeUpstream(this: ServerResponse): void {
  Exchange.of(this)?.controller?.resume()
}
