/**
 * The control API between the CLI and the primary: HTTP + JSON over `<state-dir>/mproxy.sock`.
 * Long operations (deploy, remove) answer with NDJSON: zero or more `progress` events, then
 * exactly one `done` or `error` event.
 */
import type { HealthCheckOptions } from '../options'
import type { ServiceStatus } from '../primary/deploys/service-status'
import type { NodeStatus } from '../primary/fleet/fleet-nodes'
import type { AcceptErrorStatus } from '../primary/workers/accept-errors'

export type { ServiceStatus, TargetStatus } from '../primary/deploys/service-status'
export type { HostCertificateStatus } from '../primary/tls/certificate-status'
export type { NodeStatus, AcceptErrorStatus }

export const SOCKET_NAME = 'mproxy.sock'

export interface DeployRequest {
  targets: string[]
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
  /** Default false: switch without waiting for health checks. */
  force?: boolean
}

export interface RemoveRequest {
  /** Service name, or undefined when `host` selects it. */
  name?: string
  host?: string
}

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
