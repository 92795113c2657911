/** The one place where a proxying failure becomes an HTTP status, or a retry. */
import type { AbortReason, Exchange } from './exchange'

export type ProxyErrorStatus = 413 | 500 | 502 | 504

/**
 * What went wrong upstream, for `mproxy_upstream_errors_total`. `timeout`: no answer in time
 * (target timeout, connect timeout) or a response that stalled; `drain`: mproxy cut a request a
 * replaced target had not answered by the end of its drain; `refused`: nothing listens at the
 * address; `reset`: the connection broke; `unresolved`: the target's host name does not resolve.
 */
export type UpstreamErrorKind = 'timeout' | 'drain' | 'refused' | 'reset' | 'unresolved' | 'other'

/** Every kind, in a fixed order: workers count errors in an array indexed by it. */
export const UPSTREAM_ERROR_KINDS: readonly UpstreamErrorKind[] = ['timeout', 'drain', 'refused', 'reset', 'unresolved', 'other']

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT'])
/** A pooled connection the upstream had closed: nothing of the request was processed. */
const STALE_CONNECTION_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])
const RESET_CODES = new Set([...STALE_CONNECTION_CODES, 'ECONNABORTED', 'UND_ERR_CLOSED'])
const UNRESOLVED_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN'])
/** Methods that mean the same when sent twice (RFC 9110 §9.2.2). */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/**
 * The answer to a client whose request failed upstream before any answer (a client that left
 * needs none: its request is logged as 499). 504: the upstream did not answer in time, or mproxy
 * cut it (`abortedByProxy`: target timeout, drain). 413: the request body passed its service's
 * limit while it streamed upstream. 500: a body's temporary file failed (disk full). 502: refused, reset, unresolvable, a response over its
 * service's limit, or any other failure.
 */
export function classifyProxyError(err: NodeJS.ErrnoException, abortedByProxy: boolean): ProxyErrorStatus {
  if (abortedByProxy) return 504
  if (err.code === 'MPROXY_ERR_REQUEST_BODY_TOO_LARGE') return 413
  if (err.code === 'MPROXY_ERR_BUFFER_FAILED') return 500
  if (err.code !== undefined && TIMEOUT_CODES.has(err.code)) return 504
  return 502
}

/** The kind of an upstream failure; `abortReason`: mproxy itself ended the request. */
export function upstreamErrorKind(err: NodeJS.ErrnoException, abortReason: AbortReason | undefined): UpstreamErrorKind {
  if (abortReason !== undefined) return abortReason
  const code = err.code
  if (code === undefined) return 'other'
  if (TIMEOUT_CODES.has(code) || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout'
  if (code === 'ECONNREFUSED') return 'refused'
  if (RESET_CODES.has(code)) return 'reset'
  if (UNRESOLVED_CODES.has(code)) return 'unresolved'
  return 'other'
}

/**
 * A request without a body that failed before any answer is sent once more (through the routes
 * of the moment, so to another target if its own left them) when sending it again is safe:
 * - its connection was refused: nothing was sent, whatever the method (a target that died
 *   before its health check noticed);
 * - an upstream closed an idle keep-alive connection just as the proxy reused it, and the method
 *   means the same when sent twice, as Go's and nginx's proxies do.
 */
export function isRetryable(exchange: Pick<Exchange, 'retries' | 'abortReason' | 'responded' | 'headHeld' | 'hasBody' | 'req'>, err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code
  if (exchange.retries > 0 || exchange.abortReason !== undefined || exchange.responded || exchange.headHeld || exchange.hasBody || code === undefined) return false
  return code === 'ECONNREFUSED' || (STALE_CONNECTION_CODES.has(code) && IDEMPOTENT_METHODS.has(exchange.req.method ?? ''))
}
