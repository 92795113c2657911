/**
 * kamal-proxy's saved state (`kamal-proxy.state`: a JSON array of services, durations in
 * nanoseconds, older versions' fields too) as mproxy services. Pure: what cannot be carried over
 * is reported by name, for the migration to log.
 */
import path from 'node:path'
import * as v from 'valibot'
import { oneLine } from '../errors'
import { parseWith } from '../lib/schema'
import { type ServiceSpec } from '../options'
import { normalizeRolloutSplit, normalizeServiceSpec } from '../service-spec'
import type { DeployFlagName } from './commands'
import { DEPLOY_FLAG_GAPS, ROLLOUT_DEPLOY_FLAG_GAPS, ignoredNote } from './gaps'
import { nanosToMs } from './go-values'
import { translateTarget } from './translate'

const list = v.nullish(v.array(v.string()))
const text = v.optional(v.string())
const flag = v.optional(v.boolean())
const nanos = v.optional(v.number())

const KAMAL_SERVICE = v.looseObject({
  name: v.string(),
  options: v.nullish(v.looseObject({
    hosts: list, path_prefixes: list, tls_enabled: flag, tls_certificate_path: text, tls_private_key_path: text,
    tls_on_demand_url: text, tls_redirect: flag, canonical_host: text, acme_directory: text, acme_cache_path: text,
    error_page_path: text, strip_prefix: flag, writer_affinity_timeout: nanos, read_targets_accept_websockets: flag,
    exclude_metrics_paths: list, client_ip_header: text,
  })),
  target_options: v.nullish(v.looseObject({
    health_check_config: v.nullish(v.looseObject({ path: text, port: v.optional(v.number()), interval: nanos, timeout: nanos, host: text })),
    response_timeout: nanos, buffer_requests: flag, buffer_responses: flag, max_memory_buffer_size: v.optional(v.number()),
    max_request_body_size: v.optional(v.number()), max_response_body_size: v.optional(v.number()),
    log_request_headers: list, log_response_headers: list, forward_headers: flag, scope_cookie_paths: flag,
  })),
  active_targets: list, active_readers: list, rollout_targets: list, rollout_readers: list,
  pause_controller: v.nullish(v.looseObject({ state: v.optional(v.number()), stop_message: text, fail_after: nanos })),
  rollout_controller: v.nullish(v.looseObject({ percentage: v.optional(v.number()), allowlist: list })),
  // Older versions.
  active_target: text, rollout_target: text, hosts: list, path_prefixes: list,
})
type KamalService = v.InferOutput<typeof KAMAL_SERVICE>

/** Where kamal-proxy cached a service's automatic certificates. */
export interface CertificateSource {
  hosts: string[]
  /** `acme_cache_path`: the root of the autocert caches. */
  cachePath: string
  /** `acme_directory`: '' for Let's Encrypt. */
  directory: string
}

export interface KamalStateImport {
  services: ServiceSpec[]
  /** Services left out, and why. */
  skipped: { service: string; reason: string }[]
  /** Per imported service: the options mproxy does not apply, as flags with the reason. */
  dropped: { service: string; options: string[] }[]
  certificates: CertificateSource[]
}

/** Parses the file's text. Throws (one line) when it is not a kamal-proxy state at all. */
export function importKamalState(textContent: string, dataDir: string): KamalStateImport {
  let data: unknown
  try {
    data = JSON.parse(textContent)
  } catch (err) {
    throw new Error(`not JSON: ${oneLine(err)}`)
  }
  if (!Array.isArray(data)) throw new Error('not a list of services')
  const result: KamalStateImport = { services: [], skipped: [], dropped: [], certificates: [] }
  const bindings = new Map<string, string>()
  const rows: KamalService[] = []
  for (const [index, entry] of data.entries()) {
    try {
      rows.push(parseWith(KAMAL_SERVICE, 'service', entry))
    } catch (err) {
      const name = (entry as { name?: unknown } | null)?.name
      result.skipped.push({ service: typeof name === 'string' ? name : `#${index + 1}`, reason: oneLine(err) })
    }
  }
  // Root services first: path-prefixed services take the TLS settings of their host's root.
  const roots = rows.filter((row) => prefixesOf(row).includes('/'))
  for (const row of [...roots, ...rows.filter((row) => !roots.includes(row))]) {
    let spec: ServiceSpec
    try {
      spec = toSpec(row, result.services)
    } catch (err) {
      result.skipped.push({ service: row.name, reason: oneLine(err) })
      continue
    }
    const taken = spec.hosts.flatMap((host) => spec.pathPrefixes.map((prefix) => `${host}${prefix}`)).find((key) => bindings.has(key))
    if (taken !== undefined) {
      result.skipped.push({ service: row.name, reason: `${taken} is already served by ${bindings.get(taken)}` })
      continue
    }
    for (const host of spec.hosts.length === 0 ? [''] : spec.hosts) for (const prefix of spec.pathPrefixes) bindings.set(`${host}${prefix}`, spec.name)
    result.services.push(spec)
    const dropped = droppedOptions(row)
    if (dropped.length > 0) result.dropped.push({ service: spec.name, options: dropped })
    if (spec.tls && !spec.tlsCertificatePath) {
      result.certificates.push({ hosts: spec.hosts, cachePath: row.options?.acme_cache_path || path.join(dataDir, 'certs'), directory: row.options?.acme_directory ?? '' })
    }
  }
  result.services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return result
}

function hostsOf(row: KamalService): string[] {
  const hosts = row.options?.hosts?.length ? row.options.hosts : (row.hosts ?? [])
  return hosts.filter((host) => host !== '')
}

function prefixesOf(row: KamalService): string[] {
  const prefixes = row.options?.path_prefixes?.length ? row.options.path_prefixes : (row.path_prefixes ?? [])
  return prefixes.length === 0 ? ['/'] : prefixes.map((prefix) => `/${prefix.replace(/^\/+|\/+$/g, '')}`)
}

function targetsOf(current: readonly string[] | null | undefined, legacy: string | undefined): string[] {
  const targets = current?.length ? current : legacy ? [legacy] : []
  return targets.map(translateTarget)
}

const ms = (value: number | undefined) => (value === undefined ? undefined : nanosToMs(BigInt(Math.trunc(value))))

function toSpec(row: KamalService, imported: readonly ServiceSpec[]): ServiceSpec {
  const options = row.options ?? {}
  const target = row.target_options ?? {}
  const health = target.health_check_config ?? {}
  const hosts = hostsOf(row)
  const pathPrefixes = prefixesOf(row)
  const rolloutTargets = targetsOf(row.rollout_targets, row.rollout_target)
  const controller = row.rollout_controller
  const root = pathPrefixes.includes('/') ? undefined : imported.find((spec) => spec.pathPrefixes.includes('/') && hosts.length > 0 && spec.hosts.includes(hosts[0].toLowerCase()))
  const tls = root
    ? { tls: root.tls, tlsRedirect: root.tlsRedirect, tlsCertificatePath: root.tlsCertificatePath, tlsPrivateKeyPath: root.tlsPrivateKeyPath }
    : ownTls(options)
  return normalizeServiceSpec({
    name: row.name,
    hosts,
    targets: targetsOf(row.active_targets, row.active_target),
    readTargets: targetsOf(row.active_readers, undefined),
    writerAffinityTimeoutMs: ms(options.writer_affinity_timeout),
    readTargetWebSockets: options.read_targets_accept_websockets === true,
    pathPrefixes,
    // Go reads a missing boolean as false: so did kamal-proxy.
    stripPathPrefix: options.strip_prefix === true,
    scopeCookiePaths: target.scope_cookie_paths === true,
    healthCheck: {
      path: health.path ? (health.path.startsWith('/') ? health.path : `/${health.path}`) : undefined,
      intervalMs: ms(health.interval),
      timeoutMs: ms(health.timeout),
    },
    targetTimeoutMs: ms(target.response_timeout),
    ...tls,
    ...(options.error_page_path && { errorPagesPath: path.resolve(options.error_page_path) }),
    excludeMetricsPaths: options.exclude_metrics_paths ?? [],
    ...(options.canonical_host && { canonicalHost: options.canonical_host }),
    forwardHeaders: target.forward_headers === true,
    logRequestHeaders: target.log_request_headers ?? [],
    logResponseHeaders: target.log_response_headers ?? [],
    buffering: {
      requests: target.buffer_requests === true,
      responses: target.buffer_responses === true,
      memoryBytes: target.max_memory_buffer_size,
      maxRequestBodyBytes: target.max_request_body_size,
      maxResponseBodyBytes: target.max_response_body_size,
    },
    ...pauseState(row.pause_controller),
    ...(rolloutTargets.length > 0 && {
      rollout: {
        targets: rolloutTargets,
        ...(controller && { split: normalizeRolloutSplit(Math.min(100, Math.max(0, controller.percentage ?? 0)), controller.allowlist ?? []) }),
      },
    }),
  })
}

/** kamal-proxy's pause controller: 0 running, 1 paused (requests held up to fail_after), 2 stopped. */
function pauseState(pause: KamalService['pause_controller']): Partial<ServiceSpec> {
  if (pause?.state === 2) return { state: 'stopped', stopMessage: pause.stop_message ?? '' }
  if (pause?.state === 1) return { state: 'paused', ...(pause.fail_after ? { maxPauseMs: ms(pause.fail_after) } : {}) }
  return {}
}

function ownTls(options: NonNullable<KamalService['options']>): Partial<ServiceSpec> {
  if (options.tls_enabled !== true) return { tls: false }
  const custom = options.tls_certificate_path && options.tls_private_key_path
  return {
    tls: true,
    tlsRedirect: options.tls_redirect === true,
    ...(custom && { tlsCertificatePath: path.resolve(options.tls_certificate_path!), tlsPrivateKeyPath: path.resolve(options.tls_private_key_path!) }),
  }
}

const empty = (value: readonly unknown[] | null | undefined) => !value || value.length === 0

/** The options of a service that differ from kamal-proxy's defaults and that mproxy does not apply. */
function droppedOptions(row: KamalService): string[] {
  const options = row.options ?? {}
  const target = row.target_options ?? {}
  const health = target.health_check_config ?? {}
  const differs: [DeployFlagName, boolean][] = [
    ['tls-on-demand-url', !!options.tls_on_demand_url],
    ['client-ip-header', !!options.client_ip_header],
    ['health-check-port', !!health.port],
    ['health-check-host', !!health.host],
  ]
  const dropped = differs.filter(([, different]) => different).map(([name]) => ignoredNote(name, DEPLOY_FLAG_GAPS[name]!))
  if (!empty(row.rollout_readers)) dropped.push(ignoredNote('read-target', ROLLOUT_DEPLOY_FLAG_GAPS['read-target']!))
  return dropped
}
