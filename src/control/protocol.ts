/**
 * The control API between the CLI and the primary: HTTP + JSON over `<state-dir>/mproxy.sock`.
 * Long operations (deploy, remove, pause, stop, resume) answer with NDJSON: zero or more `progress` events, then
 * exactly one `done` or `error` event.
 */
import type { BufferingOptions, HealthCheckOptions } from '../options'
import type { ServiceStatus } from '../primary/deploys/service-status'
import type { NodeStatus } from '../primary/fleet/fleet-nodes'
import type { AcceptErrorStatus } from '../primary/workers/accept-errors'
import type { EventLoopDelayStatus } from '../primary/event-loop-delay'

export type { ServiceStatus, TargetStatus } from '../primary/deploys/service-status'
export type { NodeStatus, AcceptErrorStatus, EventLoopDelayStatus }

/** The control socket in the state dir: the socket itself, or a link to the socket the proxy was started with. */
export const SOCKET_NAME = 'mproxy.sock'

export interface DeployRequest {
  targets: string[]
  /** Default none. */
  readTargets?: string[]
  /** Default 1000; 0 turns writer affinity off. */
  writerAffinityTimeoutMs?: number
  /** Default false. */
  readTargetWebSockets?: boolean
  hosts: string[]
  name?: string
  /** Default `['/']`. */
  pathPrefixes?: string[]
  /** Default true. */
  stripPathPrefix?: boolean
  /** Default false. */
  scopeCookiePaths?: boolean
  /** Default false. */
  tls?: boolean
  /** Default true: with TLS, plain HTTP is redirected to HTTPS. */
  tlsRedirect?: boolean
  tlsCertificatePath?: string
  tlsPrivateKeyPath?: string
  /** Absolute path of a directory of `<status>.html` pages; none: the built-in pages. */
  errorPagesPath?: string
  /** Default none: other hosts of the service are served, not redirected. */
  canonicalHost?: string
  /** Default false: the client's X-Forwarded-* headers are replaced (unless from a trusted proxy). */
  forwardHeaders?: boolean
  /** Default none. */
  logRequestHeaders?: string[]
  logResponseHeaders?: string[]
  healthCheck: Partial<HealthCheckOptions>
  deployTimeoutMs?: number
  drainTimeoutMs?: number
  targetTimeoutMs?: number
  /** Wait for the old target's WebSockets instead of closing them after the switch. */
  drainWebSockets?: boolean
  /** Paths (as the app sees them, without the query) the metrics do not count. Default none. */
  excludeMetricsPaths?: string[]
  /** Default false: switch without waiting for health checks. */
  force?: boolean
  /** Options of another CLI dialect (kamal-proxy) that were accepted without effect: the primary logs them. */
  ignoredOptions?: string[]
  /** Body buffering and size limits; each field has its default when absent. */
  buffering?: Partial<BufferingOptions>
}

export interface RolloutDeployRequest {
  name: string
  targets: string[]
  deployTimeoutMs?: number
  /** As in DeployRequest. */
  ignoredOptions?: string[]
}

export interface RolloutSetRequest {
  name: string
  /** 0-100. Default 0. */
  percent?: number
  /** `kamal-rollout` cookie values always sent to the rollout targets. */
  allowlist?: string[]
}

export interface RolloutStopRequest {
  name: string
}

/** Names the service a command acts on: by name, or by one of its hosts. */
export interface ServiceSelector {
  /** Service name, or undefined when `host` selects it. */
  name?: string
  host?: string
}

export type RemoveRequest = ServiceSelector

export interface PauseRequest extends ServiceSelector {
  /** Longest wait for the requests in flight; default: the service's drain timeout. */
  drainTimeoutMs?: number
  /** Longest each new request is held before a 504; default: the last pause's, else 30 s. */
  maxPauseMs?: number
}

export interface StopRequest extends ServiceSelector {
  /** Longest wait for the requests in flight; default: the service's drain timeout. */
  drainTimeoutMs?: number
  /** The text of the 503 page; default: a general maintenance text. */
  message?: string
}

export type ResumeRequest = ServiceSelector

export interface ListResponse {
  services: ServiceStatus[]
  /** With Redis only: every node seen in the last day, sorted by name. */
  nodes?: NodeStatus[]
  /** Why the nodes could not be read (Redis away). */
  nodesError?: string
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
  /** The ACME directory automatic certificates are ordered from. */
  acmeDirectory: string
  /** Where Prometheus metrics are served (`--metrics-port`); absent when they are off. */
  metricsPort?: number
  /** Workers that reported an accept error within the last 5 s: `status` exits 1 while there are any. */
  acceptErrors: AcceptErrorStatus[]
  /** How late the primary's event loop ran since it started (see src/primary/event-loop-delay.ts). */
  eventLoopDelay: EventLoopDelayStatus
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
  rolloutDeploy: { method: 'POST', path: '/rollout/deploy' },
  rolloutSet: { method: 'POST', path: '/rollout/set' },
  rolloutStop: { method: 'POST', path: '/rollout/stop' },
  pause: { method: 'POST', path: '/pause' },
  stop: { method: 'POST', path: '/stop' },
  resume: { method: 'POST', path: '/resume' },
  list: { method: 'GET', path: '/list' },
  status: { method: 'GET', path: '/status' },
  reload: { method: 'POST', path: '/reload' },
  upgrade: { method: 'POST', path: '/upgrade' },
  prepare: { method: 'POST', path: '/takeover/prepare' },
  commit: { method: 'POST', path: '/takeover/commit' },
} as const
