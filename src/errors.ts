/**
 * Errors that users see. Each has a stable code and a one-line message; the CLI prints
 * `Error: <message>` and exits 1, the control server sends `{ code, message }`.
 */
export class MproxyError extends Error {
  readonly code: string = 'MPROXY_ERR'
  /** HTTP status the control server answers with. */
  readonly httpStatus: number = 400
}

function define<C extends string>(code: C, httpStatus: number) {
  return class extends MproxyError {
    override readonly code: C = code
    override readonly httpStatus = httpStatus
  }
}

export class InvalidTargetError extends define('MPROXY_ERR_INVALID_TARGET', 400) {}
export class InvalidHostError extends define('MPROXY_ERR_INVALID_HOST', 400) {}
export class InvalidDurationError extends define('MPROXY_ERR_INVALID_DURATION', 400) {}
export class InvalidSizeError extends define('MPROXY_ERR_INVALID_SIZE', 400) {}
export class InvalidOptionError extends define('MPROXY_ERR_INVALID_OPTION', 400) {}
export class InvalidCertificateError extends define('MPROXY_ERR_INVALID_CERTIFICATE', 400) {}
export class HostInUseError extends define('MPROXY_ERR_HOST_IN_USE', 409) {}
export class ServiceNotFoundError extends define('MPROXY_ERR_SERVICE_NOT_FOUND', 404) {}
export class TargetUnhealthyError extends define('MPROXY_ERR_TARGET_UNHEALTHY', 422) {}
/** `rollout set` on a service without rollout targets. */
export class RolloutNotSetError extends define('MPROXY_ERR_ROLLOUT_NOT_SET', 409) {}
export class StateFileError extends define('MPROXY_ERR_STATE_FILE', 500) {}
export class ProxyNotRunningError extends define('MPROXY_ERR_NOT_RUNNING', 503) {}
export class AlreadyRunningError extends define('MPROXY_ERR_ALREADY_RUNNING', 409) {}
export class WorkerCrashLoopError extends define('MPROXY_ERR_CRASH_LOOP', 500) {}
export class ShuttingDownError extends define('MPROXY_ERR_SHUTTING_DOWN', 503) {}
export class NotAcceptingError extends define('MPROXY_ERR_NOT_ACCEPTING', 503) {}
/** A takeover is under way: changes wait for the new process. */
export class HandingOverError extends define('MPROXY_ERR_HANDING_OVER', 503) {}
/** A takeover or upgrade could not complete; the running proxy keeps serving. */
export class ReloadFailedError extends define('MPROXY_ERR_RELOAD_FAILED', 500) {}
/** A request body over its service's --max-request-body: answered 413, the app never sees it whole. */
export class RequestBodyTooLargeError extends define('MPROXY_ERR_REQUEST_BODY_TOO_LARGE', 413) {}
/** A response body over its service's --max-response-body: answered 502, or cut once started. */
export class ResponseBodyTooLargeError extends define('MPROXY_ERR_RESPONSE_BODY_TOO_LARGE', 502) {}
/** A body's temporary file could not be created, written or read (disk full, say): answered 500. */
export class BufferFailedError extends define('MPROXY_ERR_BUFFER_FAILED', 500) {}
export class TakeoverFailedError extends define('MPROXY_ERR_TAKEOVER_FAILED', 500) {}
/** A port mproxy was told to serve on cannot be opened. */
export class ListenFailedError extends define('MPROXY_ERR_LISTEN_FAILED', 500) {}

export function hostTakenError(host: string, service: string): HostInUseError {
  return new HostInUseError(`host ${host} is already used by service ${service}`)
}

export function defaultServiceTakenError(service: string): HostInUseError {
  return new HostInUseError(
    `service ${service} already answers for requests with no matching host (deployed without --host); deploy with --name ${service} to replace it`)
}

/** The first line of any thrown value, for one-line error output. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text.split('\n')[0]
}
