/**
 * The control API between the CLI and the primary: HTTP + JSON over `<state-dir>/mproxy.sock`.
 * Long operations (deploy, remove) answer with NDJSON: zero or more `progress` events, then
 * exactly one `done` or `error` event.
 */
import type { HealthCheckOptions } from '../options'

export const SOCKET_NAME = 'mproxy.sock'

export interface DeployRequest {
  targets: string[]
  hosts: string[]
  name?: string
  /** Default false. */
  tls?: boolean
  /** Default true: with TLS, plain HTTP is redirected to HTTPS. */
  tlsRedirect?: boolean
  tlsCertificatePath?: string
  tlsPrivateKeyPath?: string
  healthCheck: Partial<HealthCheckOptions>
  deployTimeoutMs?: number
  drainTimeoutMs?: number
  targetTimeoutMs?: number
  /** Wait for the old target's WebSockets instead of closing them after the switch. */
  drainWebSockets?: boolean
  /** Default false: switch without waiting for health checks. */
  force?: boolean
}

export interface RemoveRequest {
  /** Service name, or undefined when `host` selects it. */
  name?: string
  host?: string
}

export type TargetHealth = 'adding' | 'healthy' | 'unhealthy' | 'draining'

export interface TargetStatus {
  address: string
  health: TargetHealth
  /** Requests and upgraded sockets in flight, summed over all workers. */
  inflight: number
}

export interface CertificateStatus {
  /**
   * `valid`: served. `pending`: being ordered, a self-signed one stands in. `failing`: the last
   * order (or loading the provided files) failed, see `error`.
   */
  state: 'valid' | 'pending' | 'failing'
  source: 'custom' | 'acme'
  /** ISO date. */
  notAfter?: string
  /** The last error, also while a valid certificate is still served. */
  error?: string
}

export interface HostCertificateStatus extends CertificateStatus {
  host: string
}

export interface ServiceStatus {
  name: string
  hosts: string[]
  targets: TargetStatus[]
  tls: boolean
  /** One entry per host for automatic certificates; one for a provided certificate. */
  certificates: HostCertificateStatus[]
  healthCheck: HealthCheckOptions
  drainTimeoutMs: number
  drainWebSockets: boolean
  targetTimeoutMs: number
}

/** A proxy of the fleet sharing this one's Redis. */
export interface NodeStatus {
  name: string
  /** The node that answers this request. */
  self: boolean
  /** Heartbeating: deploys wait for it. */
  live: boolean
  /** ISO time, by the node's own clock. */
  lastHeartbeatAt: string
  /** The newest revision of the shared state the node had read. */
  revision: number
  pid: number
  hostname: string
  version: string
}

export interface ListResponse {
  services: ServiceStatus[]
  /** With Redis only: every node seen in the last day, sorted by name. */
  nodes?: NodeStatus[]
  /** Why the nodes could not be read (Redis away). */
  nodesError?: string
}

/** A worker that could not accept connections lately. */
export interface AcceptErrorStatus {
  /** The worker's id, as in the logs. */
  worker: number
  pid: number
  /** `EMFILE (too many open files)`. */
  error: string
  lastSeenMsAgo: number
}

export interface StatusResponse {
  version: string
  pid: number
  uptimeMs: number
  workers: number
  workerPids: number[]
  services: number
  routeTableVersion: number
  /** Where the state is kept: the state file, or Redis with a copy in the file. */
  state: string
  /** With Redis only: this node's name in the fleet. */
  node?: string
  httpPort: number
  /** 0 when HTTPS could not listen (see httpsError). */
  httpsPort: number
  httpsError?: string
  /** Workers that reported an accept error within the last 5 s: `status` exits 1 while there are any. */
  acceptErrors: AcceptErrorStatus[]
}

/** A new primary asks the running one to hand over (see src/primary/takeover.ts). */
export interface PrepareRequest {
  /** The new primary's pid and version, for the old one's log and its answers meanwhile. */
  pid: number
  version: string
}

/** The running primary has stopped taking changes and saved its state. */
export interface PrepareResponse {
  pid: number
  version: string
  /** The ports it actually listens on (0: HTTPS off). */
  httpPort: number
  httpsPort: number
}

export interface CommitRequest {
  /** The pid that prepared: a commit by any other process is refused. */
  pid: number
}

export interface CommitResponse {
  /** The old primary's pid: it stops now. */
  pid: number
}

/**
 * One line of a streamed answer. `prepared` answers a takeover's `prepare`, whose stream then
 * stays open until the takeover ends: the old primary resumes if it closes before the commit.
 */
export type StreamEvent =
  | { type: 'progress'; message: string }
  | { type: 'prepared'; answer: PrepareResponse }
  | { type: 'done'; message: string }
  | { type: 'error'; code: string; message: string }

export const ROUTES = {
  deploy: { method: 'POST', path: '/deploy' },
  remove: { method: 'POST', path: '/remove' },
  list: { method: 'GET', path: '/list' },
  status: { method: 'GET', path: '/status' },
  reload: { method: 'POST', path: '/reload' },
  upgrade: { method: 'POST', path: '/upgrade' },
  prepare: { method: 'POST', path: '/takeover/prepare' },
  commit: { method: 'POST', path: '/takeover/commit' },
} as const
