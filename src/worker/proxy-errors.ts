/** The one place where a proxying failure becomes an HTTP status. */

export type ProxyErrorStatus = 499 | 502 | 504

export interface ProxyErrorContext {
  /** The client closed its connection before the answer was complete. */
  clientGone: boolean
  /** mproxy aborted the upstream request itself (target timeout or drain cut). */
  abortedByProxy: boolean
}

/**
 * 499: the client left (log only, nothing to send). 504: the upstream did not answer in time,
 * or was cut at the end of a drain. 502: refused, reset, unresolvable or any other failure.
 */
export function classifyProxyError(err: NodeJS.ErrnoException, ctx: ProxyErrorContext): ProxyErrorStatus {
  if (ctx.abortedByProxy) return 504
  if (ctx.clientGone) return 499
  if (err.code === 'ETIMEDOUT' || err.code === 'ESOCKETTIMEDOUT') return 504
  return 502
}
