/**
 * Builds the route table every worker serves from: pure, from the services the registry holds
 * and the TLS material of the moment.
 */
import type { RouteCertificate, RouteService, RouteTable } from '../../ipc/messages'
import type { ServiceSpec } from '../../options'

/** What the table needs of one service. */
export interface RoutedService {
  spec: ServiceSpec
  targets: ReadonlyArray<{ readonly address: string; readonly state: string }>
  readTargets: ReadonlyArray<{ readonly address: string; readonly state: string }>
  rolloutTargets: ReadonlyArray<{ readonly address: string; readonly state: string }>
  /** Plain HTTP is redirected to HTTPS (TLS with a certificate to serve, and redirects on). */
  tlsRedirect: boolean
  /** HTTP-01 challenges are answered for its hosts (automatic certificates). */
  acmeChallenges: boolean
  /** Its custom error pages (none: the built-in ones). */
  errorPages?: Readonly<Record<string, string>>
}

export interface TlsRoutes {
  certificates: RouteCertificate[]
  acmeThumbprint: string
  acmeTlsChallenges: RouteCertificate[]
}

export function buildRouteTable(version: number, services: Iterable<RoutedService>, tls: TlsRoutes): RouteTable {
  return {
    version,
    services: [...services].map(routeService),
    certificates: tls.certificates,
    acmeThumbprint: tls.acmeThumbprint,
    acmeTlsChallenges: tls.acmeTlsChallenges,
  }
}

function routeService({ spec, targets, readTargets, rolloutTargets, tlsRedirect, acmeChallenges, errorPages }: RoutedService): RouteService {
  return {
    name: spec.name,
    hosts: spec.hosts,
    pathPrefixes: spec.pathPrefixes,
    stripPathPrefix: spec.stripPathPrefix,
    scopeCookiePaths: spec.scopeCookiePaths,
    targets: routedAddresses(targets),
    readTargets: readerAddresses(readTargets),
    writerAffinityMs: readTargets.length > 0 ? spec.writerAffinityTimeoutMs : 0,
    readTargetWebSockets: spec.readTargetWebSockets,
    rolloutTargets: routedAddresses(rolloutTargets),
    // Without a split nobody is sent to the rollout targets.
    rolloutSplit: spec.rollout?.split,
    targetTimeoutMs: spec.targetTimeoutMs,
    drainWebSockets: spec.drainWebSockets,
    tlsRedirect,
    excludeMetricsPaths: spec.excludeMetricsPaths,
    acmeChallenges,
    state: spec.state,
    stopMessage: spec.stopMessage,
    maxPauseMs: spec.maxPauseMs,
    healthCheckPath: spec.healthCheck.path,
    errorPages: { ...errorPages },
    buffering: spec.buffering,
    canonicalHost: spec.canonicalHost ?? '',
    forwardHeaders: spec.forwardHeaders,
    logRequestHeaders: spec.logRequestHeaders,
    logResponseHeaders: spec.logResponseHeaders,
  }
}

/**
 * The healthy targets. With none: those a forced deploy switched to before any check passed them
 * (`--force` asks for exactly that). Failing that, a service of one target still tries it: a
 * single app that fails a health check during a blip may still answer, and a 503 would take the
 * site down for sure. Several targets that all fail their checks get none, and the service
 * answers 503.
 */
function routedAddresses(targets: RoutedService['targets']): string[] {
  const routed = readerAddresses(targets)
  return routed.length === 0 && targets.length === 1 ? [targets[0].address] : routed
}

/**
 * The read targets that take reads: the healthy ones, or those a forced deploy switched to
 * before any check. Never a failing one, even the only one: the targets answer reads as well.
 */
function readerAddresses(targets: RoutedService['readTargets']): string[] {
  let routed = targets.filter((target) => target.state === 'healthy')
  if (routed.length === 0) routed = targets.filter((target) => target.state === 'adding')
  return routed.map((target) => target.address)
}
