/**
 * A service definition from any source (a deploy request, state.json, a Redis record, an
 * imported kamal-proxy state) checked and normalized once, before anything is built from it.
 */
import path from 'node:path'
import * as v from 'valibot'
import { InvalidOptionError } from './errors'
import { checkDuration } from './lib/duration'
import { checkSize } from './lib/size'
import { parseWith } from './lib/schema'
import { normalizeHeaderName, normalizeHost, normalizeTarget, validatePath, validateServiceName } from './lib/validate'
import {
  DEFAULT_BUFFER_MEMORY_BYTES, DEFAULT_DEPLOY_TIMEOUT_MS, DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_HEALTH_CHECK_INTERVAL_MS,
  DEFAULT_HEALTH_CHECK_PATH, DEFAULT_HEALTH_CHECK_TIMEOUT_MS, DEFAULT_MAX_PAUSE_MS, DEFAULT_SERVICE_NAME, DEFAULT_TARGET_TIMEOUT_MS,
  DEFAULT_WRITER_AFFINITY_TIMEOUT_MS, SERVICE_STATES, type BufferingOptions, type DeployOptions, type RolloutSpec, type RolloutSplit, type ServiceSpec,
} from './options'

function checkTimeout(name: string, ms: unknown, { allowZero = false } = {}): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || (!allowZero && ms === 0)) {
    throw new InvalidOptionError(`invalid ${name}: must be a ${allowZero ? 'non-negative' : 'positive'} duration`)
  }
  return checkDuration(ms, name)
}

const optionalMs = v.optional(v.number())
const optionalBytes = v.optional(v.number())
const optionalText = v.optional(v.string())
const optionalList = v.optional(v.array(v.string()))
const optionalFlag = v.optional(v.boolean())

/**
 * The options of a service whose shape is the same wherever it comes from: a deploy request
 * (control/schemas.ts) and a stored definition (below). Numbers, nested objects and the fields
 * that identify a service differ in strictness between the two.
 */
export const SERVICE_OPTION_FIELDS = {
  readTargets: optionalList,
  readTargetWebSockets: optionalFlag,
  pathPrefixes: optionalList,
  stripPathPrefix: optionalFlag,
  scopeCookiePaths: optionalFlag,
  drainWebSockets: optionalFlag,
  tls: optionalFlag,
  tlsRedirect: optionalFlag,
  tlsCertificatePath: optionalText,
  tlsPrivateKeyPath: optionalText,
  excludeMetricsPaths: optionalList,
  errorPagesPath: optionalText,
  canonicalHost: optionalText,
  forwardHeaders: optionalFlag,
  logRequestHeaders: optionalList,
  logResponseHeaders: optionalList,
}

/**
 * The shape of a service definition from any source: a deploy request, state.json, a Redis
 * record. Unknown fields are ignored (a file written by another version); the values' meaning is
 * checked by normalizeServiceSpec.
 */
const SERVICE_SPEC_INPUT = v.looseObject({
  ...SERVICE_OPTION_FIELDS,
  name: optionalText,
  hosts: optionalList,
  targets: v.array(v.string()),
  writerAffinityTimeoutMs: optionalMs,
  healthCheck: v.optional(v.looseObject({ path: optionalText, intervalMs: optionalMs, timeoutMs: optionalMs })),
  targetTimeoutMs: optionalMs,
  drainTimeoutMs: optionalMs,
  rollout: v.optional(v.looseObject({
    targets: v.array(v.string()),
    split: v.optional(v.looseObject({ percent: v.number(), allowlist: optionalList })),
  })),
  state: v.optional(v.picklist(SERVICE_STATES)),
  stopMessage: optionalText,
  maxPauseMs: optionalMs,
  buffering: v.optional(v.looseObject({
    requests: optionalFlag,
    responses: optionalFlag,
    memoryBytes: optionalBytes,
    maxRequestBodyBytes: optionalBytes,
    maxResponseBodyBytes: optionalBytes,
  })),
})

/** Validates a service definition from an untrusted source (CLI request, state file) and normalizes it. */
export function normalizeServiceSpec(untrusted: unknown): ServiceSpec {
  const input = parseWith(SERVICE_SPEC_INPUT, 'service', untrusted)
  if (input.targets.length === 0) {
    throw new InvalidOptionError('at least one target (host:port) is required')
  }
  const targets = [...new Set(input.targets.map(normalizeTarget))]
  const readTargets = normalizeReadTargets(input.readTargets, targets)
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
    readTargets,
    writerAffinityTimeoutMs: checkTimeout('writer affinity timeout', input.writerAffinityTimeoutMs ?? DEFAULT_WRITER_AFFINITY_TIMEOUT_MS, { allowZero: true }),
    readTargetWebSockets: input.readTargetWebSockets === true,
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

/** Read targets are other instances: an address is a target or a read target, not both. */
function normalizeReadTargets(input: string[] | undefined, targets: string[]): string[] {
  const readTargets = [...new Set((input ?? []).map(normalizeTarget))]
  const both = readTargets.find((address) => targets.includes(address))
  if (both !== undefined) throw new InvalidOptionError(`${both} is both a target and a read target: give it once`)
  return readTargets
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
