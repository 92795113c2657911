/** How each service stands, as `mproxy list` shows it: its options, targets and certificates. */
import type { HealthCheckOptions } from '../../options'
import type { HostCertificateStatus } from '../tls/certificate-status'
import type { ServiceCertificates } from '../tls/service-certificates'
import type { InflightSource } from './drain'
import type { Service } from './service'
import type { TargetState } from './target'

export interface TargetStatus {
  address: string
  health: TargetState
  /** Requests and upgraded sockets in flight, summed over all workers. */
  inflight: number
}

export interface ServiceStatus {
  name: string
  hosts: string[]
  pathPrefixes: string[]
  stripPathPrefix: boolean
  scopeCookiePaths: boolean
  targets: TargetStatus[]
  tls: boolean
  /** One entry per host for automatic certificates; one for a provided certificate. */
  certificates: HostCertificateStatus[]
  healthCheck: HealthCheckOptions
  drainTimeoutMs: number
  drainWebSockets: boolean
  targetTimeoutMs: number
  /** Where its other hosts are redirected; null for none. */
  canonicalHost: string | null
  forwardHeaders: boolean
  logRequestHeaders: string[]
  logResponseHeaders: string[]
}

/** `list`'s view of a service: its live targets, then those still draining. */
export function serviceStatus(
  { spec, targets, draining, certificate }: Service,
  certificates: ServiceCertificates,
  workers: InflightSource,
): ServiceStatus {
  return {
    name: spec.name,
    hosts: spec.hosts,
    pathPrefixes: spec.pathPrefixes,
    stripPathPrefix: spec.stripPathPrefix,
    scopeCookiePaths: spec.scopeCookiePaths,
    tls: spec.tls,
    certificates: certificates.status(spec, certificate),
    healthCheck: spec.healthCheck,
    drainTimeoutMs: spec.drainTimeoutMs,
    drainWebSockets: spec.drainWebSockets,
    targetTimeoutMs: spec.targetTimeoutMs,
    canonicalHost: spec.canonicalHost ?? null,
    forwardHeaders: spec.forwardHeaders,
    logRequestHeaders: spec.logRequestHeaders,
    logResponseHeaders: spec.logResponseHeaders,
    targets: [...targets, ...draining].map((target) => ({
      address: target.address,
      health: target.state,
      inflight: workers.inflight(target.address),
    })),
  }
}
