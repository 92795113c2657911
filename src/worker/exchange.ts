/**
 * One proxied request: what the pipeline, the target proxy and the request log share. It is
 * tagged on the client request, so the per-request listeners can be shared functions instead
 * of closures.
 */
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http'

const EXCHANGE = Symbol('mproxy.exchange')
type Tagged = { [EXCHANGE]?: Exchange }

/** The side an exchange is in flight on, told when the client response closes. */
export interface ExchangeOwner {
  release(exchange: Exchange): void
}

export class Exchange {
  /** Set once the upstream request exists, so a timeout or a drain cut can abort it. */
  proxyReq: ClientRequest | undefined = undefined
  /** Upstream response headers arrived: the target timeout no longer applies. */
  responded = false
  /** Why mproxy itself ended the upstream request; makes the answer 504 rather than 502. */
  abortReason: 'timeout' | 'drain' | undefined = undefined
  bytes = 0
  target = ''
  owner: ExchangeOwner | undefined = undefined

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly service: string,
    readonly startedAt: number,
    readonly targetTimeoutMs: number,
    readonly client: string,
    readonly requestId: string,
  ) {
    ;(req as Tagged)[EXCHANGE] = this
  }

  /** The exchange of a client request (a response finds it through `res.req`). */
  static of(req: IncomingMessage): Exchange | undefined {
    return (req as Tagged)[EXCHANGE]
  }
}
