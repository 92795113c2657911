/**
 * A request sent over a connection of its own (node:http, no pool), driving the same Exchange
 * handler as the pooled client. Three rare cases need it:
 * - `OPTIONS *` (RFC 9110 §9.3.7), the one request target the pooled client refuses to send;
 * - `Expect: 100-continue`: the app, not the proxy, decides whether the upload may start, so an
 *   app that refuses it (413, 401) is never raced by a body it did not want;
 * - the retry of a request a stale pooled connection dropped: a fresh connection cannot be stale.
 */
import http from 'node:http'
import { Readable, pipeline } from 'node:stream'
import type { Dispatcher } from 'undici'
import { splitTarget } from '../lib/validate'
import type { Exchange } from './exchange'
import type { UpstreamBody } from './upload-body'

/** How long an app may take to answer `100 Continue` before the upload starts anyway (as curl). */
const CONTINUE_TIMEOUT_MS = 1_000

/** A request target the pooled client can send: origin form, or absolute form. */
export function isPoolableTarget(url: string): boolean {
  return url.startsWith('/') || url.startsWith('http://') || url.startsWith('https://')
}

export function sendOneOffRequest(exchange: Exchange, address: string, body: UpstreamBody, handler: Dispatcher.DispatchHandler = exchange): void {
  const { host, port } = splitTarget(address)
  const upstream = http.request({
    host,
    port,
    method: exchange.req.method,
    path: exchange.path,
    headers: exchange.expectContinue ? [...exchange.upstreamHeaders, 'expect', '100-continue'] : exchange.upstreamHeaders,
    setHost: false,
    agent: false,
  })
  const controller = new OneOffController(upstream)
  handler.onRequestStart!(controller, null)
  upstream.on('finish', () => handler.onRequestSent?.())
  upstream.on('response', (response) => {
    controller.response = response
    handler.onResponseStart!(controller, response.statusCode ?? 502, response.headers, response.statusMessage)
    response.on('data', (chunk: Buffer) => handler.onResponseData!(controller, chunk))
    response.on('end', () => handler.onResponseEnd!(controller, response.trailers))
    response.on('error', (err) => fail(exchange, handler, controller, err))
  })
  upstream.on('error', (err) => fail(exchange, handler, controller, err))
  if (body === null) upstream.end()
  else if (!exchange.expectContinue) writeBody(body, upstream)
  else sendBodyOnContinue(exchange, upstream, body)
}

function writeBody(body: Exclude<UpstreamBody, null>, upstream: http.ClientRequest): void {
  if (Buffer.isBuffer(body)) upstream.end(body)
  else if (body instanceof http.IncomingMessage) body.pipe(upstream)
  // A failing body (over --max-request-body) destroys the request with its error, which `fail` reports.
  else pipeline(Readable.from(body), upstream, () => {})
}

function sendBodyOnContinue(exchange: Exchange, upstream: http.ClientRequest, body: Exclude<UpstreamBody, null>): void {
  let started = false
  const start = (): void => {
    if (started || upstream.destroyed) return
    started = true
    clearTimeout(timer)
    if (!exchange.res.headersSent) exchange.res.writeContinue()
    writeBody(body, upstream)
  }
  const timer = setTimeout(start, CONTINUE_TIMEOUT_MS)
  upstream.once('continue', start)
  // A final answer instead: the client never gets `100 Continue`, and sends no body.
  upstream.once('response', () => {
    started = true
    clearTimeout(timer)
  })
  upstream.once('close', () => clearTimeout(timer))
}

function fail(exchange: Exchange, handler: Dispatcher.DispatchHandler, controller: OneOffController, err: Error): void {
  if (!exchange.settled) handler.onResponseError!(controller, err)
}

/** The part of undici's controller the Exchange uses, over a node:http request. */
class OneOffController implements Dispatcher.DispatchController {
  response: http.IncomingMessage | undefined = undefined
  #reason: Error | null = null

  constructor(readonly request: http.ClientRequest) {}

  get aborted(): boolean {
    return this.#reason !== null
  }

  get paused(): boolean {
    return this.response?.isPaused() ?? false
  }

  get reason(): Error | null {
    return this.#reason
  }

  abort(reason: Error): void {
    this.#reason = reason
    this.request.destroy(reason)
  }

  pause(): void {
    this.response?.pause()
  }

  resume(): void {
    this.response?.resume()
  }
}
