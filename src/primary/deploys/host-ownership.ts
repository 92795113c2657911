/**
 * Which service a host belongs to: pure functions over the services' specs, for the registry to
 * check a deploy against, and to find the service a command names by host.
 */
import { InvalidOptionError, ServiceNotFoundError, defaultServiceTakenError, hostTakenError } from '../../errors'
import type { RemoveRequest } from '../../control/protocol'
import { normalizeHost } from '../../lib/validate'
import type { ServiceSpec } from '../../options'

/** Throws when another service has one of `spec`'s hosts, or is the default service too. */
export function checkHostsAvailable(services: readonly ServiceSpec[], spec: ServiceSpec): void {
  for (const other of services) {
    if (other.name === spec.name) continue
    if (spec.hosts.length === 0 && other.hosts.length === 0) throw defaultServiceTakenError(other.name)
    const taken = spec.hosts.find((host) => other.hosts.includes(host))
    if (taken) throw hostTakenError(taken, other.name)
  }
}

/** The service that has every one of these hosts already, if one does: a redeploy of it. */
export function ownerOfAllHosts(services: readonly ServiceSpec[], hosts: readonly string[]): string | undefined {
  if (hosts.length === 0) return undefined
  const normalized = hosts.map(normalizeHost)
  return services.find((service) => normalized.every((host) => service.hosts.includes(host)))?.name
}

/** The service a command names, by name or by one of its hosts ('' names the default service). */
export function resolveServiceName(services: readonly ServiceSpec[], request: RemoveRequest): string {
  if (request.name) return request.name
  if (request.host === undefined) throw new InvalidOptionError('give a service name or --host')
  const host = request.host === '' ? '' : normalizeHost(request.host)
  const service = services.find((spec) => (host === '' ? spec.hosts.length === 0 : spec.hosts.includes(host)))
  if (!service) throw new ServiceNotFoundError(`no service answers for host ${request.host}`)
  return service.name
}
