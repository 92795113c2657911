/** How each service stands, as `mproxy list` shows it: its options, targets and certificates. */
import type { RolloutSplit, ServiceSpec } from '../../options'
import type { HostCertificateStatus } from '../tls/certificate-status'
import type { ServiceCertificates } from '../tls/service-certificates'
import type { InflightSource } from './drain'
import type { Service } from './service'
import type { TargetState } from './target'

export interface TargetStatus {
  address: string
  health: TargetState
  /** `reader` for read targets, `rollout` for the targets of `mproxy rollout deploy`. */
  slot: 'active' | 'reader' | 'rollout'
  /** Requests and upgraded sockets in flight, summed over all workers. */
  inflight: number
}

/** Every option of the service as deployed (see ServiceSpec), with its targets' state and its certificates. */
export interface ServiceStatus extends Omit<ServiceSpec, 'targets' | 'readTargets' | 'rollout'> {
  /** Active targets, then read targets, then rollout targets, then replaced ones still draining. */
  targets: TargetStatus[]
  /** One entry per host for automatic certificates; one for a provided certificate. */
  certificates: HostCertificateStatus[]
  /** Which requests go to the rollout targets; absent when none do. */
  rolloutSplit?: RolloutSplit
  /** Requests held now, summed over all workers (they count as in flight too). */
  held: number
}

/** `list`'s view of a service: its live targets, then those still draining. */
export function serviceStatus(
  { spec, targets, readTargets, rolloutTargets, draining, certificate }: Service,
  certificates: ServiceCertificates,
  workers: InflightSource & { held(service: string): number },
): ServiceStatus {
  const { targets: _targets, readTargets: _readTargets, rollout, ...options } = spec
  return {
    ...options,
    certificates: certificates.status(spec, certificate),
    rolloutSplit: rollout?.split,
    held: workers.held(spec.name),
    targets: [...targets, ...readTargets, ...rolloutTargets, ...draining].map((target) => ({
      address: target.address,
      health: target.state,
      slot: rolloutTargets.includes(target) ? 'rollout' : readTargets.includes(target) ? 'reader' : 'active',
      inflight: workers.inflight(target.address),
    })),
  }
}
