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
  /** Plain HTTP is redirected to HTTPS (TLS with a certificate to serve, and redirects on). */
  tlsRedirect: boolean
  /** HTTP-01 challenges are answered for its hosts (automatic certificates). */
  acmeChallenges: boolean
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

function routeService({ spec, targets, tlsRedirect, acmeChallenges }: RoutedService): RouteService {
  const healthy = targets.filter((target) => target.state === 'healthy')
  return {
    name: spec.name,
    hosts: spec.hosts,
    pathPrefixes: spec.pathPrefixes,
    stripPathPrefix: spec.stripPathPrefix,
    scopeCookiePaths: spec.scopeCookiePaths,
    // With no healthy target, trying them all beats answering 503 on a health-check blip.
    targets: (healthy.length > 0 ? healthy : targets).map((target) => target.address),
    targetTimeoutMs: spec.targetTimeoutMs,
    drainWebSockets: spec.drainWebSockets,
    tlsRedirect,
    acmeChallenges,
    canonicalHost: spec.canonicalHost ?? '',
    forwardHeaders: spec.forwardHeaders,
    logRequestHeaders: spec.logRequestHeaders,
    logResponseHeaders: spec.logResponseHeaders,
  }
}
