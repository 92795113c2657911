/**
 * A request sent over a connection of its own (node:http, no pool), driving the same Exchange
 * handler as the pooled client. Three rare cases need it:
 * - `OPTIONS *` (RFC 9110 §9.3.7), the one request target the pooled client refuses to send;
 * - `Expect: 100-continue`: the app, not the proxy, decides whether the upload may start, so an
 *   app that refuses it (413, 401) is never raced by a body it did not want;
 * - the retry of a request a stale pooled connection dropped: a fresh connection cannot be stale.
 */
import http from 'node:http'
import type { Dispatcher } from 'undici'
import { splitTarget } from '../lib/validate'
import type { Exchange } from './exchange'

/** How long an app may take to answer `100 Continue` before the upload starts anyway (as curl). */
const CONTINUE_TIMEOUT_MS = 1_000

/** A request target the pooled client can send: origin form, or absolute form. */
export function isPoolableTarget(url: string): boolean {
  return url.startsWith('/') || url.startsWith('http://') || url.startsWith('https://')
}

export function sendOneOffRequest(exchange: Exchange, address: string): void {
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
  exchange.onRequestStart(controller)
  upstream.on('finish', () => exchange.onRequestSent())
  upstream.on('response', (response) => {
    controller.response = response
    exchange.onResponseStart(controller, response.statusCode ?? 502, response.headers, response.statusMessage)
    response.on('data', (chunk: Buffer) => exchange.onResponseData(controller, chunk))
    response.on('end', () => exchange.onResponseEnd())
    response.on('error', (err) => fail(exchange, controller, err))
  })
  upstream.on('error', (err) => fail(exchange, controller, err))
  if (!exchange.hasBody) upstream.end()
  else if (!exchange.expectContinue) exchange.req.pipe(upstream)
  else sendBodyOnContinue(exchange, upstream)
}

function sendBodyOnContinue(exchange: Exchange, upstream: http.ClientRequest): void {
  let started = false
  const start = (): void => {
    if (started || upstream.destroyed) return
    started = true
    clearTimeout(timer)
    if (!exchange.res.headersSent) exchange.res.writeContinue()
    exchange.req.pipe(upstream)
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

function fail(exchange: Exchange, controller: OneOffController, err: Error): void {
  if (!exchange.settled) exchange.onResponseError(controller, err)
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
