/**
 * A service's body rules applied to one request: request buffering and --max-request-body on the
 * way in, response buffering and --max-response-body on the way out. Requests of services with
 * none of these never get here (TargetProxy.web checks `exchange.bodyRules` once).
 *
 * The guard stands between the upstream client and the Exchange: it is the dispatch handler and
 * passes on what the client may see. It is also the Exchange's controller while nothing upstream
 * is: while the request body is read, and while a buffered response is written out. So the
 * Exchange's own paths (client gone, drain cut, backpressure) reach it without knowing of it.
 *
 * - Request buffering: the body is read whole (memory, then a temporary file) while the request
 *   is in flight on the target it was picked for, so drains wait for it. Then it goes, with a
 *   Content-Length, to that target, or to the one its service routes to now if that one was
 *   retired meanwhile. The target timeout starts once it is sent, as for any request.
 * - Request limit: a Content-Length over it is answered 413 at once; a body read or streamed
 *   past it is cut there and answered 413 (the connection closed, as the rest is unread).
 * - Response buffering: the head and body are held until the body is complete, then written
 *   with a Content-Length. Server-sent events stream through, neither buffered nor limited.
 * - Response limit: 502 when it is known in advance (Content-Length) or met while buffering;
 *   a response already streaming to the client is cut.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { BufferFailedError, RequestBodyTooLargeError, ResponseBodyTooLargeError } from '../errors'
import { log } from '../lib/logger'
import type { BufferingOptions } from '../options'
import { BodyBuffer } from './body-buffer'
import { sendErrorPage } from './error-pages'
import { closeAfterAnswer } from './lingering-close'
import type { Exchange } from './exchange'
import type { TargetProxy } from './target-proxy'
import { limitedUpload, type UpstreamBody } from './upload-body'

type ResponseMode = 'stream' | 'limit' | 'buffer'

/** Sends a request of a service with body rules to `target`; the entry point from TargetProxy.web. */
export function sendUnderRules(exchange: Exchange, target: TargetProxy): void {
  (exchange.guard ??= new BodyGuard(exchange, exchange.bodyRules!)).send(target)
}

export class BodyGuard implements Dispatcher.DispatchHandler, Dispatcher.DispatchController {
  readonly #exchange: Exchange
  readonly #rules: BufferingOptions
  #started = false
  /** The request body, once read (request buffering). */
  #request: BodyBuffer | undefined = undefined
  /** Where the request goes once its body is read. */
  #target: TargetProxy | undefined = undefined
  #mode: ResponseMode = 'stream'
  #response: BodyBuffer | undefined = undefined
  #responseBytes = 0
  #head: { status: number; headers: IncomingHttpHeaders; message: string | undefined } | undefined = undefined
  // As the Exchange's controller.
  #reason: Error | null = null
  #paused = false
  #wake: (() => void) | undefined = undefined

  constructor(exchange: Exchange, rules: BufferingOptions) {
    this.#exchange = exchange
    this.#rules = rules
  }

  send(target: TargetProxy): void {
    const exchange = this.#exchange
    const first = !this.#started
    this.#started = true
    if (first && exchange.hasBody) {
      const max = this.#rules.maxRequestBodyBytes
      if (max > 0 && declaredLength(exchange) > max) return this.#refuse()
      if (this.#rules.requests) return this.#read(target)
    }
    target.send(exchange, this.#requestBody(), this)
  }

  // Reading the request body (request buffering)

  #read(target: TargetProxy): void {
    const exchange = this.#exchange
    this.#target = target
    this.#request = new BodyBuffer(this.#rules.memoryBytes)
    exchange.controller = this
    if (exchange.expectContinue) {
      // The proxy takes the body, so the proxy invites it; the upstream gets no Expect.
      exchange.expectContinue = false
      exchange.res.writeContinue()
    }
    const req = exchange.req
    req.on('data', this.#onRequestData)
    req.once('end', this.#onRequestEnd)
    // The connection is gone, or its bytes make no request: the response closes, and `abort` cleans up.
    req.on('error', this.#stopReading)
  }

  #onRequestData = (chunk: Buffer): void => {
    const body = this.#request!
    const max = this.#rules.maxRequestBodyBytes
    if (max > 0 && body.size + chunk.length > max) return this.#refuse()
    const written = body.append(chunk)
    if (written === undefined) return
    this.#exchange.req.pause()
    written.then(this.#resumeReading, this.abort)
  }

  #resumeReading = (): void => {
    if (this.#reason === null) this.#exchange.req.resume()
  }

  #onRequestEnd = (): void => {
    this.#request!.flushed().then(this.#sendRead, this.abort)
  }

  #sendRead = (): void => {
    if (this.#reason !== null) return
    this.#stopReading()
    const exchange = this.#exchange
    exchange.controller = undefined
    // A chunked upload leaves as one with a known length, which every app server takes.
    if (exchange.req.headers['content-length'] === undefined) exchange.upstreamHeaders.push('content-length', String(this.#request!.size))
    const target = this.#target!
    if (!target.moveIfRetired(exchange)) target.send(exchange, this.#requestBody(), this)
  }

  #stopReading = (): void => {
    const req = this.#exchange.req
    req.off('data', this.#onRequestData)
    req.off('end', this.#onRequestEnd)
  }

  /** 413, and the connection closes after it: the rest of the upload is not read. */
  #refuse(): void {
    const { req, res } = this.#exchange
    this.#stopReading()
    this.#reason = new RequestBodyTooLargeError('request body over --max-request-body')
    this.#release()
    if (!req.complete) closeAfterAnswer(req, res)
    sendErrorPage(res, 413)
  }

  #requestBody(): UpstreamBody {
    const exchange = this.#exchange
    if (!exchange.hasBody) return null
    const body = this.#request
    if (body) return body.spilled ? body.chunks() : body.toBuffer()
    const max = this.#rules.maxRequestBodyBytes
    // A declared length is within the limit (checked in `send`); Node's parser holds the client to it.
    return max > 0 && declaredLength(exchange) < 0 ? limitedUpload(exchange.req, max) : exchange.req
  }

  // undici's handler

  onRequestStart(controller: Dispatcher.DispatchController, _context: unknown): void {
    this.#exchange.onRequestStart(controller)
  }

  onRequestSent(): void {
    this.#exchange.onRequestSent()
    this.#request?.destroy()
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    const exchange = this.#exchange
    if (statusCode < 200) return
    const max = this.#rules.maxResponseBodyBytes
    if (isEventStream(headers)) this.#mode = 'stream'
    else if (max > 0 && mayHaveBody(exchange.req.method, statusCode) && Number(headers['content-length'] ?? 0) > max) return this.#overLimit(controller)
    else if (this.#rules.responses) this.#mode = 'buffer'
    else this.#mode = max > 0 ? 'limit' : 'stream'
    if (this.#mode !== 'buffer') return exchange.onResponseStart(controller, statusCode, headers, statusMessage)
    this.#head = { status: statusCode, headers, message: statusMessage }
    this.#response = new BodyBuffer(this.#rules.memoryBytes)
    // The upstream has answered: the target timeout no longer applies.
    exchange.headHeld = true
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#mode === 'stream') return this.#exchange.onResponseData(controller, chunk)
    this.#responseBytes += chunk.length
    const max = this.#rules.maxResponseBodyBytes
    if (max > 0 && this.#responseBytes > max) return this.#overLimit(controller)
    if (this.#mode === 'limit') return this.#exchange.onResponseData(controller, chunk)
    const written = this.#response!.append(chunk)
    if (written === undefined) return
    controller.pause()
    written.then(() => controller.resume(), (err: Error) => controller.abort(err))
  }

  onResponseEnd(controller: Dispatcher.DispatchController, _trailers: IncomingHttpHeaders): void {
    if (this.#mode !== 'buffer') {
      this.#release()
      return this.#exchange.onResponseEnd()
    }
    // The upstream is done: from here on, aborts (client gone, drain cut) come to the guard.
    this.#exchange.controller = this
    this.#response!.flushed().then(this.#writeOut, this.abort)
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    this.#release()
    this.#logFailure(err)
    this.#exchange.onResponseError(controller, err)
  }

  // The Exchange's controller

  get aborted(): boolean {
    return this.#reason !== null
  }

  get paused(): boolean {
    return this.#paused
  }

  get reason(): Error | null {
    return this.#reason
  }

  /** Client gone, drain cut or a failed buffer: stops reading or writing, frees both bodies. */
  abort = (reason: Error): void => {
    if (this.#reason !== null) return
    this.#reason = reason
    this.#stopReading()
    this.#release()
    this.#logFailure(reason)
    this.#wake?.()
    // 504 for a drain cut, nothing for a client that left, a cut for a response under way.
    this.#exchange.onResponseError(this, reason)
  }

  pause(): void {
    this.#paused = true
  }

  resume(): void {
    this.#paused = false
    this.#wake?.()
  }

  // Private

  /** Writes a buffered response out, through the Exchange, with backpressure. Never rejects. */
  #writeOut = async (): Promise<void> => {
    const exchange = this.#exchange
    const body = this.#response!
    const { status, headers, message } = this.#head!
    if (headers['content-length'] === undefined && mayHaveBody(exchange.req.method, status)) headers['content-length'] = String(body.size)
    try {
      if (this.#reason !== null) return
      exchange.onResponseStart(this, status, headers, message)
      for await (const chunk of body.chunks()) {
        if (this.#reason !== null) return
        exchange.onResponseData(this, chunk)
        if (this.#paused) await new Promise<void>((resolve) => (this.#wake = resolve))
        this.#wake = undefined
      }
      if (this.#reason === null) exchange.onResponseEnd()
    } catch (err) {
      // A header Node refuses (502), or a failed read of the file (the response is cut).
      this.abort(err as Error)
    } finally {
      body.destroy()
    }
  }

  #overLimit(controller: Dispatcher.DispatchController): void {
    const exchange = this.#exchange
    log('warn', 'response body over the limit', {
      service: exchange.service, target: exchange.target, path: exchange.req.url, limit: this.#rules.maxResponseBodyBytes,
      started: exchange.responded, requestId: exchange.requestId,
    })
    controller.abort(new ResponseBodyTooLargeError('response body over --max-response-body'))
  }

  /** A failed temporary file is the proxy's own failure: logged here, answered 500. */
  #logFailure(err: Error): void {
    if (!(err instanceof BufferFailedError)) return
    const exchange = this.#exchange
    log('error', 'body buffer failed', { service: exchange.service, path: exchange.req.url, error: err.message, requestId: exchange.requestId })
  }

  #release(): void {
    this.#request?.destroy()
    this.#response?.destroy()
  }
}

/** The request's Content-Length, or -1 when it has none (chunked). */
function declaredLength(exchange: Exchange): number {
  const header = exchange.req.headers['content-length']
  return header === undefined ? -1 : Number(header)
}

/** `text/event-stream`, with or without parameters. */
function isEventStream(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type']
  return typeof type === 'string' && /^\s*text\/event-stream\s*(;|$)/i.test(type)
}

function mayHaveBody(method: string | undefined, status: number): boolean {
  return method !== 'HEAD' && status !== 204 && status !== 304
}
