/** How each service stands, as `mproxy list` shows it: its options, targets and certificates. */
import type { HealthCheckOptions, ServiceState } from '../../options'
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
  /** `running`, or `paused` / `stopped` by `mproxy pause` / `mproxy stop`. */
  state: ServiceState
  /** The text of the 503 page while stopped ('' for the default). */
  stopMessage: string
  /** How long a request is held while paused. */
  maxPauseMs: number
  /** Requests held now, summed over all workers (they count as in flight too). */
  held: number
  /** The directory of its custom error pages, if it has one. */
  errorPagesPath?: string
}

/** `list`'s view of a service: its live targets, then those still draining. */
export function serviceStatus(
  { spec, targets, draining, certificate }: Service,
  certificates: ServiceCertificates,
  workers: InflightSource & { held(service: string): number },
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
    state: spec.state,
    stopMessage: spec.stopMessage,
    maxPauseMs: spec.maxPauseMs,
    held: workers.held(spec.name),
    ...(spec.errorPagesPath !== undefined && { errorPagesPath: spec.errorPagesPath }),
    targets: [...targets, ...draining].map((target) => ({
      address: target.address,
      health: target.state,
      inflight: workers.inflight(target.address),
    })),
  }
}
