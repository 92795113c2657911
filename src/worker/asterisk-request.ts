/**
 * `OPTIONS *` (RFC 9110 §9.3.7) is the one request target the pooled client refuses to send.
 * It is rare, so it goes upstream through a one-off node:http request that drives the same
 * Exchange handler, and the app still gets the target as the client wrote it.
 */
import http from 'node:http'
import type { Dispatcher } from 'undici'
import type { Exchange } from './exchange'

/** A request target the pooled client can send: origin form, or absolute form. */
export function isPoolableTarget(url: string): boolean {
  return url.startsWith('/') || url.startsWith('http://') || url.startsWith('https://')
}

export function sendAsteriskRequest(exchange: Exchange, address: string): void {
  const colon = address.lastIndexOf(':')
  const upstream = http.request({
    host: address.slice(0, colon).replace(/^\[|\]$/g, ''),
    port: Number(address.slice(colon + 1)),
    method: exchange.req.method,
    path: exchange.req.url,
    headers: exchange.upstreamHeaders,
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
    response.on('error', (err) => { if (!exchange.settled) exchange.onResponseError(controller, err) })
  })
  upstream.on('error', (err) => {
    if (!exchange.settled) exchange.onResponseError(controller, err)
  })
  if (exchange.hasBody) exchange.req.pipe(upstream)
  else upstream.end()
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
