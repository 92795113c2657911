import path from 'node:path'
import * as v from 'valibot'
import { InvalidOptionError } from './errors'
import { checkDuration } from './lib/duration'
import { checkSize } from './lib/size'
import { parseWith } from './lib/schema'
import { normalizeHeaderName, normalizeHost, normalizeTarget, validatePath, validateServiceName } from './lib/validate'

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

function checkTimeout(name: string, ms: unknown, { allowZero = false } = {}): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || (!allowZero && ms === 0)) {
    throw new InvalidOptionError(`invalid ${name}: must be a ${allowZero ? 'non-negative' : 'positive'} duration`)
  }
  return checkDuration(ms, name)
}

const optionalMs = v.optional(v.number())
const optionalBytes = v.optional(v.number())
const optionalText = v.optional(v.string())
/**
 * The shape of a service definition from any source: a deploy request, state.json, a Redis
 * record. Unknown fields are ignored (a file written by another version); the values' meaning is
 * checked by normalizeServiceSpec.
 */
const SERVICE_SPEC_INPUT = v.looseObject({
  name: optionalText,
  hosts: v.optional(v.array(v.string())),
  targets: v.array(v.string()),
  pathPrefixes: v.optional(v.array(v.string())),
  stripPathPrefix: v.optional(v.boolean()),
  scopeCookiePaths: v.optional(v.boolean()),
  healthCheck: v.optional(v.looseObject({ path: optionalText, intervalMs: optionalMs, timeoutMs: optionalMs })),
  targetTimeoutMs: optionalMs,
  drainTimeoutMs: optionalMs,
  drainWebSockets: v.optional(v.boolean()),
  tls: v.optional(v.boolean()),
  tlsRedirect: v.optional(v.boolean()),
  excludeMetricsPaths: v.optional(v.array(v.string())),
  tlsCertificatePath: optionalText,
  tlsPrivateKeyPath: optionalText,
  rollout: v.optional(v.looseObject({
    targets: v.array(v.string()),
    split: v.optional(v.looseObject({ percent: v.number(), allowlist: v.optional(v.array(v.string())) })),
  })),
  errorPagesPath: optionalText,
  state: v.optional(v.picklist(SERVICE_STATES)),
  stopMessage: optionalText,
  maxPauseMs: optionalMs,
  buffering: v.optional(v.looseObject({
    requests: v.optional(v.boolean()),
    responses: v.optional(v.boolean()),
    memoryBytes: optionalBytes,
    maxRequestBodyBytes: optionalBytes,
    maxResponseBodyBytes: optionalBytes,
  })),
  canonicalHost: optionalText,
  forwardHeaders: v.optional(v.boolean()),
  logRequestHeaders: v.optional(v.array(v.string())),
  logResponseHeaders: v.optional(v.array(v.string())),
})

/** Validates a service definition from an untrusted source (CLI request, state file) and normalizes it. */
export function normalizeServiceSpec(untrusted: unknown): ServiceSpec {
  const input = parseWith(SERVICE_SPEC_INPUT, 'service', untrusted)
  if (input.targets.length === 0) {
    throw new InvalidOptionError('at least one target (host:port) is required')
  }
  const targets = [...new Set(input.targets.map(normalizeTarget))]
  const hosts = [...new Set((input.hosts ?? []).map(normalizeHost))]
  const pathPrefixes = normalizePathPrefixes(input.pathPrefixes)
  const name = validateServiceName(input.name || defaultServiceName(hosts, pathPrefixes))
  const hc = input.healthCheck ?? {}
  const tls = normalizeTls(input, hosts)
  const canonicalHost = normalizeCanonicalHost(input.canonicalHost, hosts)
  return {
    name,
    hosts,
    targets,
    pathPrefixes,
    stripPathPrefix: input.stripPathPrefix !== false,
    scopeCookiePaths: input.scopeCookiePaths === true,
    healthCheck: {
      path: validatePath(hc.path ?? DEFAULT_HEALTH_CHECK_PATH),
      intervalMs: checkTimeout('health check interval', hc.intervalMs ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS),
      timeoutMs: checkTimeout('health check timeout', hc.timeoutMs ?? DEFAULT_HEALTH_CHECK_TIMEOUT_MS),
    },
    targetTimeoutMs: checkTimeout('target timeout', input.targetTimeoutMs ?? DEFAULT_TARGET_TIMEOUT_MS),
    drainTimeoutMs: checkTimeout('drain timeout', input.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS, { allowZero: true }),
    drainWebSockets: input.drainWebSockets === true,
    excludeMetricsPaths: normalizeMetricsPaths(input.excludeMetricsPaths),
    ...tls,
    ...(input.errorPagesPath !== undefined && { errorPagesPath: checkAbsolute('error pages directory', input.errorPagesPath) }),
    state: input.state ?? 'running',
    stopMessage: input.stopMessage ?? '',
    maxPauseMs: checkTimeout('max pause', input.maxPauseMs ?? DEFAULT_MAX_PAUSE_MS),
    ...(input.rollout && { rollout: normalizeRollout(input.rollout) }),
    buffering: normalizeBuffering(input.buffering ?? {}),
    ...(canonicalHost === undefined ? {} : { canonicalHost }),
    forwardHeaders: input.forwardHeaders === true,
    logRequestHeaders: normalizeLoggedHeaders(input.logRequestHeaders, 'request'),
    logResponseHeaders: normalizeLoggedHeaders(input.logResponseHeaders, 'response'),
  }
}

function normalizeBuffering(input: Partial<BufferingOptions>): BufferingOptions {
  return {
    requests: input.requests === true,
    responses: input.responses === true,
    memoryBytes: checkSize(input.memoryBytes ?? DEFAULT_BUFFER_MEMORY_BYTES, 'buffer memory'),
    maxRequestBodyBytes: checkSize(input.maxRequestBodyBytes ?? 0, 'max request body'),
    maxResponseBodyBytes: checkSize(input.maxResponseBodyBytes ?? 0, 'max response body'),
  }
}

function normalizeRollout(input: { targets: string[]; split?: { percent: number; allowlist?: string[] } }): RolloutSpec {
  if (input.targets.length === 0) throw new InvalidOptionError('at least one rollout target (host:port) is required')
  const targets = [...new Set(input.targets.map(normalizeTarget))]
  if (!input.split) return { targets }
  return { targets, split: normalizeRolloutSplit(input.split.percent, input.split.allowlist ?? []) }
}

export function normalizeRolloutSplit(percent: number, allowlist: string[]): RolloutSplit {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new InvalidOptionError(`invalid rollout percentage ${percent}: must be a whole number from 0 to 100`)
  const values = [...new Set(allowlist.map((value) => value.trim()).filter(Boolean))]
  const bad = values.find((value) => !/^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$/.test(value))
  if (bad !== undefined) throw new InvalidOptionError(`invalid rollout cookie value "${bad}": a cookie value has no spaces, quotes, commas, semicolons or backslashes`)
  return { percent, allowlist: values }
}

function checkAbsolute(name: string, file: string): string {
  if (!path.isAbsolute(file)) throw new InvalidOptionError(`the ${name} must be an absolute path: ${file}`)
  return path.normalize(file)
}

/** Whether two specs differ in nothing but their state (a pause, stop or resume). */
export function onlyStateDiffers(a: ServiceSpec, b: ServiceSpec): boolean {
  const withoutState = ({ state: _s, stopMessage: _m, maxPauseMs: _p, ...rest }: ServiceSpec) => JSON.stringify(rest)
  return withoutState(a) === withoutState(b)
}

/** `/api/`, `api` → `/api`; none → `/`. A prefix is a path: no query, no spaces. */
export function normalizePathPrefixes(input: string[] | undefined): string[] {
  const prefixes = (input ?? []).map((prefix) => {
    const path = `/${prefix.trim().replace(/^\/+|\/+$/g, '')}`
    if (!/^\/[^\s?#]*$/.test(path) || path.includes('//')) throw new InvalidOptionError(`invalid path prefix "${prefix}": expected a path such as /api`)
    return path
  })
  return prefixes.length === 0 ? ['/'] : [...new Set(prefixes)]
}

/** Each a path without query or fragment; duplicates dropped. */
function normalizeMetricsPaths(input: string[] | undefined): string[] {
  for (const path of input ?? []) {
    if (!/^\/[^\s?#]*$/.test(path)) throw new InvalidOptionError(`invalid metrics path "${path}": expected a path such as /up, without a query`)
  }
  return [...new Set(input ?? [])]
}

/** A host the service answers for, or any host when it has none; '' means none. */
function normalizeCanonicalHost(input: string | undefined, hosts: string[]): string | undefined {
  if (input === undefined || input.trim() === '') return undefined
  const host = normalizeHost(input)
  if (host.startsWith('*.')) throw new InvalidOptionError(`invalid canonical host "${input}": redirects need one host name, not a wildcard`)
  if (hosts.length > 0 && !hosts.includes(host)) {
    throw new InvalidOptionError(`canonical host ${host} is not one of the service's hosts (${hosts.join(', ')})`)
  }
  return host
}

/** Lower case, without duplicates; two names must not make the same log field (`x-a`, `x_a`). */
function normalizeLoggedHeaders(input: string[] | undefined, kind: 'request' | 'response'): string[] {
  const names = [...new Set((input ?? []).map((name) => normalizeHeaderName(name, `--log-${kind}-header`)))]
  const byField = new Map<string, string>()
  for (const name of names) {
    // The field name's rule (src/worker/header-log.ts logFieldName) on a lower-case name.
    const field = name.replaceAll('-', '_')
    const other = byField.get(field)
    if (other !== undefined) throw new InvalidOptionError(`--log-${kind}-header ${other} and ${name} would be logged as the same field`)
    byField.set(field, name)
  }
  return names
}

/** Named after its first host, and its first prefix when it is not `/`: `app.example.com-api`. */
function defaultServiceName(hosts: string[], prefixes: string[]): string {
  const base = hosts[0] ?? DEFAULT_SERVICE_NAME
  return prefixes[0] === '/' ? base : `${base}${prefixes[0].replace(/[^A-Za-z0-9._]+/g, '-')}`
}

type TlsOptions = Pick<ServiceSpec, 'tls' | 'tlsRedirect' | 'tlsCertificatePath' | 'tlsPrivateKeyPath'>

function normalizeTls(input: Partial<TlsOptions>, hosts: string[]): TlsOptions {
  const { tlsCertificatePath: cert, tlsPrivateKeyPath: key } = input
  if ((cert === undefined) !== (key === undefined)) {
    throw new InvalidOptionError('give both --tls-certificate-path and --tls-private-key-path, or neither')
  }
  const tls = input.tls === true || cert !== undefined
  if (!tls) return { tls: false, tlsRedirect: false }
  if (hosts.length === 0) throw new InvalidOptionError('--ssl/--tls needs at least one --host: certificates are per host name')
  if (cert === undefined || key === undefined) {
    const wildcard = hosts.find((host) => host.startsWith('*.'))
    // HTTP-01 cannot prove control of a wildcard name; that takes DNS-01.
    if (wildcard) throw new InvalidOptionError(`automatic certificates cannot cover the wildcard host ${wildcard}; give --tls-certificate-path and --tls-private-key-path`)
    return { tls: true, tlsRedirect: input.tlsRedirect !== false }
  }
  if (!path.isAbsolute(cert) || !path.isAbsolute(key)) throw new InvalidOptionError('certificate and key paths must be absolute')
  return { tls: true, tlsRedirect: input.tlsRedirect !== false, tlsCertificatePath: cert, tlsPrivateKeyPath: key }
}

/** Checks the durations a pause or stop is given, before anything waits or changes. */
export function checkStateChange(drainTimeoutMs: number | undefined, maxPauseMs: number | undefined): void {
  if (drainTimeoutMs !== undefined) checkTimeout('drain timeout', drainTimeoutMs, { allowZero: true })
  if (maxPauseMs !== undefined) checkTimeout('max pause', maxPauseMs)
}

export function normalizeDeployOptions(input: Partial<DeployOptions>): DeployOptions {
  return {
    deployTimeoutMs: checkTimeout('deploy timeout', input.deployTimeoutMs ?? DEFAULT_DEPLOY_TIMEOUT_MS),
    force: input.force === true,
  }
}
