/**
 * The options of a service, and the defaults of every option, with units in their names.
 * Validation and normalization of untrusted input live in service-spec.ts.
 */
/** Defaults shared by the CLI flags and the primary, with units in their names. */
export const DEFAULT_HTTP_PORT = 80
export const DEFAULT_HTTPS_PORT = 443
export const DEFAULT_HEALTH_CHECK_PATH = '/up'
export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 1_000
export const DEFAULT_HEALTH_CHECK_TIMEOUT_MS = 5_000
export const DEFAULT_DEPLOY_TIMEOUT_MS = 30_000
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000
export const DEFAULT_TARGET_TIMEOUT_MS = 30_000
/** How long SIGTERM waits for in-flight requests before cutting them. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000
/** Long enough for server-sent events with a sparse heartbeat; a stalled response is cut after it. */
export const DEFAULT_RESPONSE_IDLE_TIMEOUT_MS = 300_000
export const DEFAULT_SERVICE_NAME = 'default'
export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory'
export const LETS_ENCRYPT_STAGING_DIRECTORY = 'https://acme-staging-v02.api.letsencrypt.org/directory'
/** First retry after a failed certificate order; doubles each time. */
export const DEFAULT_ACME_RETRY_BASE_MS = 60_000
/** How often certificates are checked for renewal. */
export const DEFAULT_ACME_CHECK_INTERVAL_MS = 3_600_000
export const DEFAULT_REDIS_PREFIX = 'mproxy:'
/** How long a client's reads go to the writers after one of its writes (with read targets). */
export const DEFAULT_WRITER_AFFINITY_TIMEOUT_MS = 1_000
/** How long a paused service holds each new request before answering 504. */
export const DEFAULT_MAX_PAUSE_MS = 30_000

/**
 * Whether a service serves: `running` proxies, `paused` holds new requests until it resumes,
 * `stopped` answers them with its 503 maintenance page.
 */
export type ServiceState = 'running' | 'paused' | 'stopped'
export const SERVICE_STATES: readonly ServiceState[] = ['running', 'paused', 'stopped']

/** The part of each request or response buffer kept in memory; the rest goes to a temporary file. */
export const DEFAULT_BUFFER_MEMORY_BYTES = 1_048_576

export interface HealthCheckOptions {
  /** Path probed with GET; any 2xx is healthy. Default `/up`. */
  path: string
  /** Time between probes, in ms. Default 1000. */
  intervalMs: number
  /** Time one probe may take before it counts as failed, in ms. Default 5000. */
  timeoutMs: number
}

/**
 * What a service does with request and response bodies. Limits apply with and without
 * buffering; SSE responses (`text/event-stream`) are never buffered nor limited.
 */
export interface BufferingOptions {
  /**
   * Read each request body whole (memory, then a temporary file) before the target sees the
   * request, and send it with a Content-Length: a slow upload never occupies the app. Default false.
   */
  requests: boolean
  /** Read each response body whole before the client gets its head. Default false. */
  responses: boolean
  /** Bytes of each buffered body kept in memory; the rest goes to a temporary file. Default 1 MiB. */
  memoryBytes: number
  /** Largest request body in bytes, 0 for no limit; over it: 413. Default 0. */
  maxRequestBodyBytes: number
  /** Largest response body in bytes, 0 for no limit; over it: 502, or a cut once started. Default 0. */
  maxResponseBodyBytes: number
}

/**
 * Everything that defines a service, as persisted and as sent in route tables.
 * Normalized once, in `normalizeServiceSpec`, before anything is built from it.
 */
export interface ServiceSpec {
  name: string
  /** Lower-case host names or `*.example.com` wildcards; empty means the default service. */
  hosts: string[]
  /** `host:port` of each instance, load-balanced round-robin over the healthy ones. */
  targets: string[]
  /**
   * Read-only instances (replicas): GET and HEAD requests go to the healthy ones, round-robin,
   * and to `targets` when none is healthy. Default none.
   */
  readTargets: string[]
  /**
   * With read targets: after a write (any other method), that client's reads go to `targets`
   * for this long, by a `kamal-writer` cookie, so it reads what it wrote. 0: off. Default 1000.
   */
  writerAffinityTimeoutMs: number
  /** With read targets: WebSocket upgrades count as reads and may go to them. Default false. */
  readTargetWebSockets: boolean
  /**
   * Paths it serves on its hosts: `/` for all of them, or prefixes such as `/api` (which match
   * `/api` and `/api/...`, not `/apiary`). The longest matching prefix of a host wins.
   */
  pathPrefixes: string[]
  /** The matched prefix is removed from the path sent upstream (`/api/users` → `/users`). Default true. */
  stripPathPrefix: boolean
  /** With a stripped prefix, cookies the app sets for its host are scoped under the prefix. Default false. */
  scopeCookiePaths: boolean
  healthCheck: HealthCheckOptions
  /** Longest wait for an upstream's response headers before answering 504, in ms. Default 30000. */
  targetTimeoutMs: number
  /** Longest wait for in-flight requests on a replaced target, in ms. Default 30000. */
  drainTimeoutMs: number
  /**
   * A replaced target's WebSockets are waited for like requests (up to the drain timeout),
   * instead of closed right after the switch so that their clients reconnect to the new target.
   * Default false.
   */
  drainWebSockets: boolean
  /** Serve the hosts over HTTPS. Default false. */
  tls: boolean
  /** With TLS, answer plain HTTP with a redirect to HTTPS. Default true. */
  tlsRedirect: boolean
  /**
   * Paths whose requests the metrics do not count (still logged), compared exactly with the path
   * the app sees (prefix stripped) without the query: `/up` matches `/up?x=1`, not `/up/x`.
   * Default none.
   */
  excludeMetricsPaths: string[]
  /** Absolute paths of a PEM certificate (chain) and its key provided by the operator. */
  tlsCertificatePath?: string
  tlsPrivateKeyPath?: string
  /**
   * Absolute path of a directory of `<status>.html` pages that replace the built-in error pages
   * of this service's answers (read by the primary at deploy and at start). Default: none.
   */
  errorPagesPath?: string
  /** `running` unless `mproxy pause` or `mproxy stop` said otherwise (kept across deploys). */
  state: ServiceState
  /** While stopped: the text of the 503 page (HTML-escaped); '' for the default text. */
  stopMessage: string
  /** While paused: longest a new request is held before it is answered 504, in ms. Default 30000. */
  maxPauseMs: number
  /** A canary beside the active targets (`mproxy rollout`); a plain deploy never changes it. */
  rollout?: RolloutSpec
  /** Body buffering and size limits. */
  buffering: BufferingOptions
  /**
   * Requests for any other host of the service get a 301 to this host, path and query kept
   * (together with the TLS redirect, in one hop). One of `hosts`; any name when there are none.
   * Default: none.
   */
  canonicalHost?: string
  /**
   * Trust the X-Forwarded-* (and other forwarding) headers of every client, as if each peer were
   * a `--trusted-proxy`: for an app behind a CDN or load balancer. Default false.
   */
  forwardHeaders: boolean
  /** Request headers logged in its access log lines as `req_<name>`, lower case. Default none. */
  logRequestHeaders: string[]
  /** Response headers logged as `resp_<name>`, lower case. Default none. */
  logResponseHeaders: string[]
}

export interface RolloutSpec {
  /** Targets of the rollout slot, health-checked like the active ones. */
  targets: string[]
  /** Which requests they get; none until `rollout set`, and again after `rollout stop`. */
  split?: RolloutSplit
}

export interface RolloutSplit {
  /** 0-100: the share of `kamal-rollout` cookie values sent to the rollout targets. */
  percent: number
  /** Cookie values always sent to the rollout targets. */
  allowlist: string[]
}

/** The part of a service that `pause`, `stop` and `resume` change, and a deploy keeps. */
export type ServiceStateFields = Pick<ServiceSpec, 'state' | 'stopMessage' | 'maxPauseMs'>

/** Options that only live as long as one deploy. */
export interface DeployOptions {
  /** Longest wait for the new targets to turn healthy, in ms. Default 30000. */
  deployTimeoutMs: number
  /** Switch without waiting for health checks. */
  force: boolean
}
