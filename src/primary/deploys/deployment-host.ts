/** The registry's part in a Deployment: its map of services, and what a change needs around it. */
import type { ServiceCertificates } from '../tls/service-certificates'
import type { DeploymentHost } from './deployment'
import { routedTargets, type Service } from './service'
import { Target, type TargetEvents } from './target'

export interface RegistryParts {
  publish(): Promise<void>
  targetEvents(service: Service): TargetEvents
  workers: DeploymentHost['workers']
  certificates: ServiceCertificates
}

export function registryHost(services: Map<string, Service>, parts: RegistryParts): DeploymentHost {
  return {
    current: (name) => services.get(name),
    route: (name, service) => {
      if (service) services.set(name, service)
      else services.delete(name)
    },
    routedAddresses: () => new Set([...services.values()].flatMap((service) => routedTargets(service).map((target) => target.address))),
    publish: parts.publish,
    servicesChanged: () => parts.certificates.manage(services.values()),
    createTarget: (service, address) => new Target(address, service.spec.healthCheck, parts.targetEvents(service), 'adding'),
    targetEvents: parts.targetEvents,
    workers: parts.workers,
    certificates: parts.certificates,
  }
}
