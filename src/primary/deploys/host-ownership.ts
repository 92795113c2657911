/**
 * Which service a host and path belong to: pure functions over the services' specs, for the
 * registry to check a deploy against, and to find the service a command names by host. A
 * binding is a host ('' for the default service) with a path prefix; each has one owner.
 */
import { HostInUseError, InvalidOptionError, ServiceNotFoundError, defaultServiceTakenError, hostTakenError } from '../../errors'
import type { RemoveRequest } from '../../control/protocol'
import { normalizeHost } from '../../lib/validate'
import type { ServiceSpec } from '../../options'

/**
 * Throws when another service owns one of `spec`'s host and prefix pairs, or shares a host with
 * it but serves that host with other TLS settings (TLS is per host: one certificate, one redirect).
 */
export function checkHostsAvailable(services: readonly ServiceSpec[], spec: ServiceSpec): void {
  for (const other of services) {
    if (other.name === spec.name) continue
    const shared = spec.hosts.length === 0 ? (other.hosts.length === 0 ? [''] : []) : spec.hosts.filter((host) => other.hosts.includes(host))
    if (shared.length === 0) continue
    const prefix = spec.pathPrefixes.find((candidate) => other.pathPrefixes.includes(candidate))
    if (prefix !== undefined) {
      if (shared[0] === '' && prefix === '/') throw defaultServiceTakenError(other.name)
      throw hostTakenError(`${shared[0] || '(no host)'}${prefix === '/' ? '' : prefix}`, other.name)
    }
    if (shared[0] !== '' && tlsSettings(other) !== tlsSettings(spec)) {
      throw new HostInUseError(`host ${shared[0]} is served by service ${other.name} with ${describeTls(other)}: all services of a host must agree on --ssl, --tls-redirect and the certificate files`)
    }
  }
}

/** The service that owns every one of these hosts with these prefixes already, if one does: a redeploy of it. */
export function ownerOfAllHosts(services: readonly ServiceSpec[], hosts: readonly string[], prefixes: readonly string[] = ['/']): string | undefined {
  if (hosts.length === 0) return undefined
  const normalized = hosts.map(normalizeHost)
  const wanted = prefixes.length === 0 ? ['/'] : prefixes
  return services.find((service) => normalized.every((host) => service.hosts.includes(host)) &&
    wanted.every((prefix) => service.pathPrefixes.includes(prefix)))?.name
}

/** The service a command names, by name or by one of its hosts ('' names the default service). */
export function resolveServiceName(services: readonly ServiceSpec[], request: RemoveRequest): string {
  if (request.name) return request.name
  if (request.host === undefined) throw new InvalidOptionError('give a service name or --host')
  const host = request.host === '' ? '' : normalizeHost(request.host)
  const matching = services.filter((spec) => (host === '' ? spec.hosts.length === 0 : spec.hosts.includes(host)))
  if (matching.length === 0) throw new ServiceNotFoundError(`no service answers for host ${request.host}`)
  if (matching.length > 1) throw new InvalidOptionError(`host ${request.host} is served by several services (${matching.map((spec) => spec.name).join(', ')}): give the service name`)
  return matching[0].name
}

function tlsSettings(spec: ServiceSpec): string {
  return JSON.stringify([spec.tls, spec.tlsRedirect, spec.tlsCertificatePath, spec.tlsPrivateKeyPath])
}

function describeTls(spec: ServiceSpec): string {
  if (!spec.tls) return 'TLS off'
  const source = spec.tlsCertificatePath ? `the certificate ${spec.tlsCertificatePath}` : 'automatic certificates'
  return `TLS on (${source}, redirect ${spec.tlsRedirect ? 'on' : 'off'})`
}
