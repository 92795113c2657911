/**
 * Typed messages between the primary and its workers (node:cluster IPC). Both sides import
 * this module. Every message carries the envelope tag `mproxy: 1`; requests carry a `seq`
 * that the answer echoes as `ack`.
 */
import type { SendHandle } from 'node:child_process'
import * as v from 'valibot'
import { SERVICE_STATES, type ServiceState } from '../options'
import type { BufferingOptions } from '../options'

/** One service as a worker needs it to route: no health-check or drain settings. */
export interface RouteService {
  name: string
  hosts: string[]
  /** `/`, or the prefixes it serves on its hosts (see ServiceSpec). */
  pathPrefixes: string[]
  stripPathPrefix: boolean
  scopeCookiePaths: boolean
  /**
   * Targets to balance over: the healthy ones; with none, those not checked yet, or the only
   * target of a single-target service. Empty: the service answers 503.
   */
  targets: string[]
  /** Its healthy read targets, which get the reads; empty: reads go to `targets`. */
  readTargets: string[]
  /** Writer affinity (see ServiceSpec) in ms; 0 when off or the service has no read targets. */
  writerAffinityMs: number
  /** Upgrades count as reads. */
  readTargetWebSockets: boolean
  /** The rollout slot's targets, the same way; they get the requests `rolloutSplit` picks. */
  rolloutTargets: string[]
  rolloutSplit?: { percent: number; allowlist: string[] }
  targetTimeoutMs: number
  /** When a target of this service is replaced, its WebSockets drain instead of closing at once. */
  drainWebSockets: boolean
  /** Answer plain HTTP with a redirect to HTTPS (TLS services whose certificate is loaded). */
  tlsRedirect: boolean
  /** Paths (as the app sees them, without the query) whose requests metrics do not count. */
  excludeMetricsPaths: string[]
  /** Answer ACME HTTP-01 challenges for these hosts (automatic certificates). */
  acmeChallenges: boolean
  /** `paused`: hold new requests; `stopped`: answer its 503 page. */
  state: ServiceState
  /** The text of its 503 page while stopped ('' for the default). */
  stopMessage: string
  /** How long a request is held while paused, in ms. */
  maxPauseMs: number
  /** Answered 200 by the worker itself (GET and HEAD) while paused or stopped. */
  healthCheckPath: string
  /** Its custom error pages: status → template (see message-template.ts). */
  errorPages: Record<string, string>
  /** Body buffering and size limits (see ServiceSpec). */
  buffering: BufferingOptions
  /** Redirect requests for its other hosts to this one; '' for none. */
  canonicalHost: string
  /** Trust the client's X-Forwarded-* headers, whoever the peer is. */
  forwardHeaders: boolean
  /** Headers logged in its access log lines (lower case). */
  logRequestHeaders: string[]
  logResponseHeaders: string[]
}

/** A certificate workers select by SNI for these hosts (exact or `*.` wildcard). */
export interface RouteCertificate {
  hosts: string[]
  cert: string
  key: string
}

/** An immutable routing snapshot. Workers answer every request from the latest one. */
export interface RouteTable {
  version: number
  services: RouteService[]
  /** Absent: unchanged since the last table this worker was sent (see table-delivery.ts). */
  certificates?: RouteCertificate[]
  /** The ACME account's key thumbprint: a challenge token's answer is `token.thumbprint`. */
  acmeThumbprint: string
  /** TLS-ALPN-01 challenge certificates, served only to clients offering `acme-tls/1`; absent as above. */
  acmeTlsChallenges?: RouteCertificate[]
}

/**
 * One metric as prom-client's `registry.getMetricsAsJSON()` gives it (its types call `type` an
 * enum; it is the string). Values are finite: JSON would turn NaN and Infinity into null.
 */
export interface MetricJson {
  name: string
  help: string
  type: 'counter' | 'gauge' | 'histogram' | 'summary'
  aggregator: 'omit' | 'sum' | 'first' | 'min' | 'max' | 'average'
  values: MetricJsonValue[]
}

export interface MetricJsonValue {
  value: number
  labels: Record<string, string | number>
  /** For the series of a histogram or summary: `<name>_bucket`, `_sum`, `_count`. */
  metricName?: string
}

/** Requests and upgraded sockets in flight, per target address. */
export type InflightCounts = Record<string, number>

/** Requests held by paused services, per service name (services holding none are left out). */
export type HeldCounts = Record<string, number>

export type ListenProtocol = 'http' | 'https'

/**
 * Where a worker's listener comes from. `attached`: the slot's socket, sent with the message.
 * `bind`: a new SO_REUSEPORT socket on `port`, joining the sockets of the other slots.
 * `bind-first`: the same for the first socket on `port`, which no other process may hold.
 */
export type ListenSource = 'attached' | 'bind' | 'bind-first'

/**
 * A listening socket's native handle (node's TCP wrap, `server._handle`). Sent over IPC, it
 * travels as a 'net.Native' handle: the receiver holds the descriptor without accepting on it.
 * (Sending the net.Server itself would make the receiver listen.)
 */
export interface ListenHandle {
  close(): void
}

export function isListenHandle(value: unknown): value is ListenHandle {
  return typeof value === 'object' && value !== null && typeof (value as { close?: unknown }).close === 'function'
}

/** node's types list only sockets and servers as sendable; a TCP wrap is sent as it is. */
export function sendable(handle: ListenHandle): SendHandle {
  return handle as unknown as SendHandle
}


export type PrimaryMessage =
  /**
   * Listen for `protocol` as `source` says, once the first table is installed. Sent before that
   * table; a worker told nothing for `https` serves no TLS.
   */
  | { mproxy: 1; type: 'listen'; protocol: ListenProtocol; source: ListenSource; port: number }
  /** Install this table; answer `routes-applied` with the same seq. */
  | { mproxy: 1; type: 'routes'; seq: number; table: RouteTable }
  /**
   * Cut what is still in flight on these retired targets (drain timeout passed). With
   * `service`: that service's requests and WebSockets on them, even on targets still routed to.
   */
  | { mproxy: 1; type: 'cut'; targets: string[]; service?: string }
  /** Stop accepting, finish in-flight requests within `timeoutMs`, then report `drained` and exit. */
  | { mproxy: 1; type: 'shutdown'; timeoutMs: number }
  /** Answer `metrics` with the same seq (only sent when metrics are on). */
  | { mproxy: 1; type: 'collect-metrics'; seq: number }

export type WorkerMessage =
  /** The worker bound a new socket for its slot, sent with this message: keep it for the slot's next workers. */
  | { mproxy: 1; type: 'listening'; protocol: ListenProtocol; port: number }
  /** The worker listens on `httpPort` (and `httpsPort`, unless it could not) and serves from table `version`. */
  | { mproxy: 1; type: 'ready'; version: number; httpPort: number; httpsPort: number; httpsError?: string }
  /** The HTTP port cannot be opened; the worker exits next. */
  | { mproxy: 1; type: 'listen-failed'; error: string }
  /** Accepting failed for lack of file descriptors (`error`: `EMFILE (too many open files)`); at most once a second. */
  | { mproxy: 1; type: 'accept-error'; code: string; error: string }
  | { mproxy: 1; type: 'routes-applied'; ack: number; version: number; inflight: InflightCounts; held?: HeldCounts }
  /** Sent on change, coalesced; includes retired targets until they reach zero. `held` absent: none. */
  | { mproxy: 1; type: 'inflight'; inflight: InflightCounts; held?: HeldCounts }
  | { mproxy: 1; type: 'metrics'; ack: number; metrics: MetricJson[] }
  /** Sent before `drained` when metrics are on: the counters as they end, for the primary to carry on. */
  | { mproxy: 1; type: 'final-metrics'; metrics: MetricJson[] }
  /** After `shutdown`: the worker has closed its listeners. */
  | { mproxy: 1; type: 'stopped-accepting' }
  | { mproxy: 1; type: 'drained' }

// Schemas: what arrives over IPC is checked whole, not only its envelope. Each must describe
// exactly the type above it (`satisfies` keeps them in step).

const envelope = { mproxy: v.literal(1) }
const protocol = v.picklist(['http', 'https'])
const inflightCounts = v.record(v.string(), v.number())
const metricJson = v.array(v.object({
  name: v.string(),
  help: v.string(),
  type: v.picklist(['counter', 'gauge', 'histogram', 'summary']),
  aggregator: v.picklist(['omit', 'sum', 'first', 'min', 'max', 'average']),
  values: v.array(v.object({
    value: v.number(),
    labels: v.record(v.string(), v.union([v.string(), v.number()])),
    metricName: v.optional(v.string()),
  })),
}))
const routeCertificate = v.object({ hosts: v.array(v.string()), cert: v.string(), key: v.string() })
const routeTable = v.object({
  version: v.number(),
  services: v.array(v.object({
    name: v.string(),
    hosts: v.array(v.string()),
    pathPrefixes: v.array(v.string()),
    stripPathPrefix: v.boolean(),
    scopeCookiePaths: v.boolean(),
    targets: v.array(v.string()),
    readTargets: v.array(v.string()),
    writerAffinityMs: v.number(),
    readTargetWebSockets: v.boolean(),
    rolloutTargets: v.array(v.string()),
    rolloutSplit: v.optional(v.object({ percent: v.number(), allowlist: v.array(v.string()) })),
    targetTimeoutMs: v.number(),
    drainWebSockets: v.boolean(),
    tlsRedirect: v.boolean(),
    excludeMetricsPaths: v.array(v.string()),
    acmeChallenges: v.boolean(),
    state: v.picklist(SERVICE_STATES),
    stopMessage: v.string(),
    maxPauseMs: v.number(),
    healthCheckPath: v.string(),
    errorPages: v.record(v.string(), v.string()),
    buffering: v.object({
      requests: v.boolean(),
      responses: v.boolean(),
      memoryBytes: v.number(),
      maxRequestBodyBytes: v.number(),
      maxResponseBodyBytes: v.number(),
    }),
    canonicalHost: v.string(),
    forwardHeaders: v.boolean(),
    logRequestHeaders: v.array(v.string()),
    logResponseHeaders: v.array(v.string()),
  })),
  certificates: v.optional(v.array(routeCertificate)),
  acmeThumbprint: v.string(),
  acmeTlsChallenges: v.optional(v.array(routeCertificate)),
})

const PRIMARY_MESSAGE = v.variant('type', [
  v.object({ ...envelope, type: v.literal('listen'), protocol, source: v.picklist(['attached', 'bind', 'bind-first']), port: v.number() }),
  v.object({ ...envelope, type: v.literal('routes'), seq: v.number(), table: routeTable }),
  v.object({ ...envelope, type: v.literal('cut'), targets: v.array(v.string()), service: v.optional(v.string()) }),
  v.object({ ...envelope, type: v.literal('shutdown'), timeoutMs: v.number() }),
  v.object({ ...envelope, type: v.literal('collect-metrics'), seq: v.number() }),
]) satisfies v.GenericSchema<unknown, PrimaryMessage>

const WORKER_MESSAGE = v.variant('type', [
  v.object({ ...envelope, type: v.literal('listening'), protocol, port: v.number() }),
  v.object({ ...envelope, type: v.literal('ready'), version: v.number(), httpPort: v.number(), httpsPort: v.number(), httpsError: v.optional(v.string()) }),
  v.object({ ...envelope, type: v.literal('listen-failed'), error: v.string() }),
  v.object({ ...envelope, type: v.literal('accept-error'), code: v.string(), error: v.string() }),
  v.object({ ...envelope, type: v.literal('routes-applied'), ack: v.number(), version: v.number(), inflight: inflightCounts, held: v.optional(inflightCounts) }),
  v.object({ ...envelope, type: v.literal('inflight'), inflight: inflightCounts, held: v.optional(inflightCounts) }),
  v.object({ ...envelope, type: v.literal('metrics'), ack: v.number(), metrics: metricJson }),
  v.object({ ...envelope, type: v.literal('final-metrics'), metrics: metricJson }),
  v.object({ ...envelope, type: v.literal('stopped-accepting') }),
  v.object({ ...envelope, type: v.literal('drained') }),
]) satisfies v.GenericSchema<unknown, WorkerMessage>

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return v.is(WORKER_MESSAGE, value)
}

export function isPrimaryMessage(value: unknown): value is PrimaryMessage {
  return v.is(PRIMARY_MESSAGE, value)
}

/**
 * Between a primary and the new primary it started for `mproxy upgrade` (child_process IPC):
 * the new one asks for the listening sockets once it listens for messages, the old one sends
 * them, each as a 'net.Native' handle like the sockets it sends its workers, then says it is done.
 */

export type UpgradeMessage =
  /** New → old: send the sockets; answered by `sockets-sent` with the same seq. */
  | { mproxy: 1; type: 'send-sockets'; seq: number }
  /** Old → new: the listening socket of `slot` for `protocol`, sent with this message. */
  | { mproxy: 1; type: 'socket'; slot: number; protocol: ListenProtocol }
  /** Old → new: every socket has been sent. */
  | { mproxy: 1; type: 'sockets-sent'; ack: number; count: number }

const UPGRADE_MESSAGE = v.variant('type', [
  v.object({ ...envelope, type: v.literal('send-sockets'), seq: v.number() }),
  v.object({ ...envelope, type: v.literal('socket'), slot: v.number(), protocol }),
  v.object({ ...envelope, type: v.literal('sockets-sent'), ack: v.number(), count: v.number() }),
]) satisfies v.GenericSchema<unknown, UpgradeMessage>

export function isUpgradeMessage(value: unknown): value is UpgradeMessage {
  return v.is(UPGRADE_MESSAGE, value)
}

export function assertNever(value: never): never {
  throw new Error(`unexpected message: ${JSON.stringify(value)}`)
}
