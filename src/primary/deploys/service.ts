/** A service as the registry holds it: its spec, certificate source and targets. */
import type { ServiceSpec } from '../../options'
import type { ServiceCertificate } from '../tls/service-certificates'
import type { Target } from './target'

export interface Service {
  spec: ServiceSpec
  certificate: ServiceCertificate
  /** The targets that get traffic (the healthy ones among them). */
  targets: Target[]
  /** The rollout slot's targets (`mproxy rollout deploy`), which get the requests `spec.rollout.split` picks. */
  rolloutTargets: Target[]
  /** Replaced targets still finishing their requests, shown by `list`. */
  draining: Target[]
}
