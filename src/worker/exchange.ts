/** One proxied request: what the pipeline, the target proxy and the request log share. */
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http'

export class Exchange {
  /** Set once the upstream request exists, so a timeout or a drain cut can abort it. */
  proxyReq: ClientRequest | undefined = undefined
  /** Upstream response headers arrived: the target timeout no longer applies. */
  responded = false
  /** Why mproxy itself ended the upstream request; makes the answer 504 rather than 502. */
  abortReason: 'timeout' | 'drain' | undefined = undefined
  bytes = 0
  target = ''

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly service: string,
    readonly startedAt: number,
    readonly targetTimeoutMs: number,
    readonly client: string,
    readonly requestId: string,
  ) {}
}
