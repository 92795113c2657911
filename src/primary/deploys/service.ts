/** A service as the registry holds it: its spec, certificate source, error pages and targets. */
import type { ServiceSpec } from '../../options'
import type { ServiceCertificate } from '../tls/service-certificates'
import type { ErrorPageTemplates } from './error-page-files'
import { Target, type TargetEvents } from './target'

export interface Service {
  spec: ServiceSpec
  certificate: ServiceCertificate
  /** Its `--error-pages`, as read when it was deployed or restored. */
  errorPages: ErrorPageTemplates
  /** The targets that get traffic (the healthy ones among them). */
  targets: Target[]
  /** Its read targets (`--read-target`), which get the reads while one of them is healthy. */
  readTargets: Target[]
  /** The rollout slot's targets (`mproxy rollout deploy`), which get the requests `spec.rollout.split` picks. */
  rolloutTargets: Target[]
  /** Replaced targets still finishing their requests, shown by `list`. */
  draining: Target[]
}

/** The targets the service routes to, which a pause or stop drains: active, read and rollout ones. */
export function routedTargets(service: Service): Target[] {
  return [...service.targets, ...service.readTargets, ...service.rolloutTargets]
}

/**
 * A saved service brought back at start: its targets serve at once (they served when it was
 * saved) while their health checks resume.
 */
export function restoredService(
  spec: ServiceSpec, certificate: ServiceCertificate, errorPages: ErrorPageTemplates, events: (service: Service) => TargetEvents,
): Service {
  const service: Service = { spec, certificate, errorPages, targets: [], readTargets: [], rolloutTargets: [], draining: [] }
  const restored = (address: string) => new Target(address, spec.healthCheck, events(service), 'healthy')
  service.targets = spec.targets.map(restored)
  service.readTargets = spec.readTargets.map(restored)
  service.rolloutTargets = (spec.rollout?.targets ?? []).map(restored)
  for (const target of routedTargets(service)) target.beginHealthChecks()
  return service
}
