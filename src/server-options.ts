/**
 * Options that live as long as the proxy process: what `mproxy run` resolves from its flags and
 * environment (see cli/run-options.ts), and the part of it each worker receives. Durations are
 * in ms and were checked against what a timer can hold when they were parsed.
 */

/** Certificates from an ACME CA (Let's Encrypt by default). */
export interface AcmeOptions {
  directoryUrl: string
  /** Contact address registered with the account. Default: none. */
  email: string | undefined
  /** First retry delay after a failed order; doubles each time. Default 1 min. */
  retryBaseMs: number
  /** How often certificates are checked for renewal. Default 1 h. */
  checkIntervalMs: number
}

export interface RedisOptions {
  /** `redis://`, `rediss://` or `unix:///path`. */
  url: string
  /** Namespace of every key. Default `mproxy:`. */
  prefix: string
  /** This proxy's name in the fleet. Default `<hostname>:<http port>`. */
  node: string
}

export interface ServerOptions {
  /** Port for plain HTTP; 0 picks a free one. Default 80. */
  httpPort: number
  /** Port for HTTPS; 0 picks a free one. Default 443. If it cannot listen, mproxy runs without TLS. */
  httpsPort: number
  /**
   * Port of the Prometheus endpoint (`/metrics`, all interfaces); 0 picks a free one
   * (`--metrics-port auto`). Default: undefined, no metrics and nothing counted.
   */
  metricsPort: number | undefined
  /** Worker processes. Default: one per CPU. */
  workers: number
  stateDir: string
  /**
   * The control socket. Default `<state-dir>/mproxy.sock`; elsewhere (`kamal-proxy run`), a link
   * at `<state-dir>/mproxy.sock` points to it, so that commands given the state dir find it.
   */
  socketPath: string
  /** Addresses or CIDRs whose X-Forwarded-* headers are trusted. Default: none. */
  trustedProxies: string[]
  /** How long SIGTERM waits for in-flight requests. Default 30 s. */
  shutdownTimeoutMs: number
  debug: boolean
  /** One log line per request. Default true. */
  accessLog: boolean
  /** A response whose upstream sends nothing for this long is cut. Default 5 min. */
  responseIdleTimeoutMs: number
  acme: AcmeOptions
  /** Keep the state in Redis, shared by a fleet of proxies. Default: none. */
  redis?: RedisOptions
  version: string
}

/** What each worker is started with (in its environment, as JSON). */
export interface WorkerConfig {
  trustedProxies: string[]
  accessLog: boolean
  responseIdleTimeoutMs: number
  /** How long in-flight requests may finish when the worker stops, also when the primary died. */
  shutdownTimeoutMs: number
  /** Count requests for the metrics (`--metrics-port`). */
  metrics: boolean
  /** Base64 of the 48 bytes of TLS session ticket keys all workers share. */
  ticketKeys: string
}

/** The environment variable that carries a worker's config. */
export const WORKER_CONFIG_ENV = 'MPROXY_WORKER_CONFIG'
