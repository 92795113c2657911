/**
 * The deployment registry: the services, their targets and options. The only code that
 * mutates them. Each mutation runs under its service's lock, publishes a new route table to
 * the workers, persists the state, and drains what it replaced.
 */
import { HostInUseError, InvalidOptionError, ServiceNotFoundError, TargetUnhealthyError } from '../errors'
import type { DeployRequest, ListResponse, RemoveRequest, ServiceStatus } from '../control/protocol'
import type { RouteTable } from '../ipc/messages'
import { formatDuration } from '../lib/duration'
import { log } from '../lib/logger'
import { normalizeHost } from '../lib/validate'
import { normalizeDeployOptions, normalizeServiceSpec, type ServiceSpec } from '../options'
import { drainTargets, type InflightSource } from './drain'
import type { ServiceCertificate, ServiceCertificates } from './service-certificates'
import type { StateStore, Snapshot } from './state-store'
import { Target, type TargetEvents } from './target'

/** What the registry needs from the workers. */
export interface WorkerFleet extends InflightSource {
  publish(table: RouteTable): Promise<void>
  readonly workerPids: number[]
  /** Why the workers could not listen for HTTPS, if they could not. */
  readonly httpsError: string | undefined
}

export type Progress = (message: string) => void

interface Service {
  spec: ServiceSpec
  certificate: ServiceCertificate
  targets: Target[]
  /** Replaced targets still finishing their requests, shown by `list`. */
  draining: Target[]
}

export class Registry {
  readonly #services = new Map<string, Service>()
  readonly #locks = new Map<string, Promise<unknown>>()
  readonly #store: StateStore
  readonly #fleet: WorkerFleet
  readonly #certificates: ServiceCertificates
  #version = 0
  #publishing: Promise<void> = Promise.resolve()

  constructor(store: StateStore, fleet: WorkerFleet, certificates: ServiceCertificates) {
    this.#store = store
    this.#fleet = fleet
    this.#certificates = certificates
  }

  /** Restores saved services. Their targets serve at once; health checks resume in the background. */
  restore(snapshot: Snapshot | undefined): void {
    for (const spec of snapshot?.services ?? []) {
      const service: Service = { spec, certificate: this.#certificates.restore(spec), targets: [], draining: [] }
      service.targets = spec.targets.map((address) => this.#createTarget(service, address, 'healthy'))
      this.#services.set(spec.name, service)
      service.targets.forEach((target) => target.beginHealthChecks())
    }
    if (this.#services.size > 0) log('info', 'state restored', { services: [...this.#services.keys()] })
    this.#certificates.manage(this.#services.values())
  }

  /** A certificate or challenge changed: resolves once every worker has the new table. */
  certificatesChanged(): Promise<void> {
    return this.#publish()
  }

  routeTable(): RouteTable {
    return {
      version: ++this.#version,
      services: [...this.#services.values()].map(({ spec, targets, certificate }) => {
        const healthy = targets.filter((target) => target.state === 'healthy')
        return {
          name: spec.name,
          hosts: spec.hosts,
          // With no healthy target, trying them all beats answering 503 on a health-check blip.
          targets: (healthy.length > 0 ? healthy : targets).map((target) => target.address),
          targetTimeoutMs: spec.targetTimeoutMs,
          tlsRedirect: this.#certificates.redirects(spec, certificate),
          acmeChallenges: certificate.kind === 'automatic',
        }
      }),
      certificates: this.#certificates.routeCertificates(this.#services.values()),
      acmeThumbprint: this.#certificates.thumbprint,
      acmeTlsChallenges: this.#certificates.tlsChallenges(),
    }
  }

  async deploy(request: DeployRequest, progress: Progress): Promise<string> {
    const spec = normalizeServiceSpec({
      name: request.name,
      hosts: request.hosts,
      targets: request.targets,
      healthCheck: request.healthCheck,
      targetTimeoutMs: request.targetTimeoutMs,
      drainTimeoutMs: request.drainTimeoutMs,
      tls: request.tls,
      tlsRedirect: request.tlsRedirect,
      tlsCertificatePath: request.tlsCertificatePath,
      tlsPrivateKeyPath: request.tlsPrivateKeyPath,
    })
    const options = normalizeDeployOptions(request)
    this.#checkHostsAvailable(spec)
    const certificate = this.#certificates.prepare(spec)
    await this.#store.check?.()
    return this.#withLock(spec.name, async () => {
      this.#checkHostsAvailable(spec)
      const startedAt = Date.now()
      log('info', 'deploy started', { service: spec.name, targets: spec.targets, hosts: spec.hosts })
      const current = this.#services.get(spec.name)
      const service: Service = { spec, certificate, targets: [], draining: current?.draining ?? [] }
      const kept = current?.targets.filter((target) => spec.targets.includes(target.address)) ?? []
      const added = spec.targets
        .filter((address) => !kept.some((target) => target.address === address))
        .map((address) => this.#createTarget(service, address, 'adding'))

      if (added.length === 0 && current && current.targets.length === kept.length) {
        for (const target of kept) target.setEvents(this.#targetEvents(service))
        service.targets = kept
        this.#services.set(spec.name, service)
        await this.#publish()
        await this.#save()
        this.#certificates.manage(this.#services.values())
        this.#reportCertificates(service, progress)
        progress(`${spec.targets.join(', ')} is already live for ${spec.name}`)
        return `deployed ${spec.name} (no change of target)`
      }

      if (options.force) {
        progress(`--force: switching without waiting for health checks`)
        added.forEach((target) => target.beginHealthChecks())
      } else {
        await this.#waitHealthy(added, spec, options.deployTimeoutMs, progress, current !== undefined)
      }

      try {
        // Another service may have taken one of these hosts while this one waited for health.
        this.#checkHostsAvailable(spec)
      } catch (err) {
        added.forEach((target) => target.stop())
        throw err
      }
      service.targets = [...kept, ...added]
      for (const target of service.targets) target.setEvents(this.#targetEvents(service))
      const replaced = current?.targets.filter((target) => !kept.includes(target)) ?? []
      for (const target of replaced) target.beginDraining()
      service.draining = [...service.draining, ...replaced]
      this.#services.set(spec.name, service)
      await this.#publish()
      log('info', 'switched', { service: spec.name, targets: spec.targets, version: this.#version })
      progress(`switched ${spec.name} to ${spec.targets.join(', ')} on ${this.#fleet.workerPids.length} workers`)
      await this.#save()
      this.#certificates.manage(this.#services.values())
      this.#reportCertificates(service, progress)
      await this.#drain(service, replaced, progress)
      log('info', 'deploy finished', { service: spec.name, durationMs: Date.now() - startedAt })
      return `deployed ${spec.name} in ${formatDuration(Date.now() - startedAt)}`
    })
  }

  async remove(request: RemoveRequest, progress: Progress): Promise<string> {
    const name = this.#resolveName(request)
    await this.#store.check?.()
    return this.#withLock(name, async () => {
      const service = this.#services.get(name)
      if (!service) throw new ServiceNotFoundError(`service ${name} not found`)
      this.#services.delete(name)
      for (const target of service.targets) target.beginDraining()
      await this.#publish()
      log('info', 'service removed', { service: name })
      progress(`stopped routing to ${name}`)
      await this.#save()
      this.#certificates.manage(this.#services.values())
      await this.#drain(service, service.targets, progress)
      return `removed ${name}`
    })
  }

  list(): ListResponse {
    const services: ServiceStatus[] = [...this.#services.values()].map(({ spec, targets, draining, certificate }) => ({
      name: spec.name,
      hosts: spec.hosts,
      tls: spec.tls,
      certificates: this.#certificates.status(spec, certificate),
      healthCheck: spec.healthCheck,
      drainTimeoutMs: spec.drainTimeoutMs,
      targetTimeoutMs: spec.targetTimeoutMs,
      targets: [...targets, ...draining].map((target) => ({
        address: target.address,
        health: target.state,
        inflight: this.#fleet.inflight(target.address),
      })),
    }))
    return { services: services.sort((a, b) => a.name.localeCompare(b.name)) }
  }

  get serviceCount(): number {
    return this.#services.size
  }

  get tableVersion(): number {
    return this.#version
  }

  stopHealthChecks(): void {
    for (const service of this.#services.values()) service.targets.forEach((target) => target.stop())
  }

  // Private

  #createTarget(service: Service, address: string, state: 'adding' | 'healthy'): Target {
    return new Target(address, service.spec.healthCheck, this.#targetEvents(service), state)
  }

  #targetEvents(service: Service): TargetEvents {
    return {
      onStateChange: () => {
        // Health changes of live targets change who gets traffic.
        if (this.#services.get(service.spec.name) === service) void this.#publish().catch(() => {})
      },
    }
  }

  async #waitHealthy(targets: Target[], spec: ServiceSpec, timeoutMs: number, progress: Progress, hasPrevious: boolean): Promise<void> {
    if (targets.length === 0) return
    const { path, intervalMs } = spec.healthCheck
    progress(`waiting for ${targets.map((t) => t.address).join(', ')} to become healthy (GET ${path} every ${formatDuration(intervalMs)}, up to ${formatDuration(timeoutMs)})`)
    const startedAt = Date.now()
    const lastDetail = new Map<string, string>()
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (targets.every((target) => target.state === 'healthy')) finish()
      }
      const finish = (err?: Error) => {
        clearTimeout(timer)
        if (err) reject(err)
        else resolve()
      }
      const timer = setTimeout(() => {
        targets.forEach((target) => target.stop())
        const reasons = targets
          .filter((target) => target.state !== 'healthy')
          .map((target) => `${target.address}: ${target.lastResult?.detail ?? 'no answer yet'}`)
        log('warn', 'deploy failed: target not healthy', { service: spec.name, reasons })
        finish(new TargetUnhealthyError(
          `target failed to become healthy within ${formatDuration(timeoutMs)} (GET ${path}): ${reasons.join('; ')}; ${hasPrevious ? 'the previous targets keep serving' : 'nothing was changed'}`))
      }, timeoutMs)
      for (const target of targets) {
        target.setEvents({
          onStateChange: check,
          onProbe: (probed, result) => {
            if (result.ok) {
              progress(`${probed.address} healthy after ${formatDuration(Date.now() - startedAt)}`)
            } else if (lastDetail.get(probed.address) !== result.detail) {
              progress(`${probed.address} not healthy yet: ${result.detail}`)
            }
            lastDetail.set(probed.address, result.detail)
          },
        })
        target.beginHealthChecks()
      }
    })
  }

  async #drain(service: Service, targets: Target[], progress: Progress): Promise<void> {
    if (targets.length === 0) return
    const addresses = targets.map((target) => target.address)
    // A target still in use by another route (or redeployed meanwhile) is not drained.
    const routed = new Set([...this.#services.values()].flatMap((s) => s.targets.map((target) => target.address)))
    const draining = addresses.filter((address) => !routed.has(address))
    const result = await drainTargets(this.#fleet, draining, service.spec.drainTimeoutMs, progress)
    service.draining = service.draining.filter((target) => !targets.includes(target))
    targets.forEach((target) => target.stop())
    log('info', 'drained', { service: service.spec.name, targets: draining, durationMs: result.durationMs, cut: result.cut })
    if (draining.length > 0) {
      progress(result.cut > 0
        ? `drained ${draining.join(', ')} after ${formatDuration(result.durationMs)} (${result.cut} cut at the drain timeout)`
        : `drained ${draining.join(', ')} after ${formatDuration(result.durationMs)}`)
    }
  }

  #reportCertificates({ spec, certificate }: Service, progress: Progress): void {
    for (const status of this.#certificates.status(spec, certificate)) {
      progress(status.state === 'valid'
        ? `certificate for ${status.host} valid until ${status.notAfter?.slice(0, 10)}`
        : `certificate for ${status.host} is being ordered in the background (see mproxy list)`)
    }
  }

  #checkHostsAvailable(spec: ServiceSpec): void {
    for (const other of this.#services.values()) {
      if (other.spec.name === spec.name) continue
      if (spec.hosts.length === 0 && other.spec.hosts.length === 0) {
        throw new HostInUseError(
          `service ${other.spec.name} already answers for requests with no matching host (deployed without --host); deploy with --name ${other.spec.name} to replace it`)
      }
      const taken = spec.hosts.find((host) => other.spec.hosts.includes(host))
      if (taken) throw new HostInUseError(`host ${taken} is already used by service ${other.spec.name}`)
    }
  }

  #resolveName(request: RemoveRequest): string {
    if (request.name) return request.name
    if (request.host === undefined) throw new InvalidOptionError('give a service name or --host')
    const host = request.host === '' ? '' : normalizeHost(request.host)
    for (const service of this.#services.values()) {
      if (host === '' ? service.spec.hosts.length === 0 : service.spec.hosts.includes(host)) return service.spec.name
    }
    throw new ServiceNotFoundError(`no service answers for host ${request.host}`)
  }

  /** Publishes one table at a time, always the latest state. */
  #publish(): Promise<void> {
    const next = this.#publishing.then(() => this.#fleet.publish(this.routeTable()))
    this.#publishing = next.catch(() => {})
    return next
  }

  #save(): Promise<void> {
    const snapshot: Snapshot = { version: 1, services: [...this.#services.values()].map((service) => service.spec) }
    return this.#store.save(snapshot)
  }

  async #withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(name) ?? Promise.resolve()
    const run = previous.catch(() => {}).then(work)
    const settled = run.catch(() => {})
    this.#locks.set(name, settled)
    try {
      return await run
    } finally {
      if (this.#locks.get(name) === settled) this.#locks.delete(name)
    }
  }
}
