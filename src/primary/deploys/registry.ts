/**
 * The deployment registry: the services, their targets and options. The only code that
 * mutates them. Each mutation runs under its service's lock (and, in a fleet, the fleet's lock),
 * publishes a new route table to the workers, persists the state, and drains what it replaced.
 */
import { ServiceNotFoundError, oneLine } from '../../errors'
import type { DeployRequest, ListResponse, RemoveRequest, ServiceStatus } from '../../control/protocol'
import type { RouteTable } from '../../ipc/messages'
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'
import {
  DEFAULT_DEPLOY_TIMEOUT_MS, DEFAULT_DRAIN_TIMEOUT_MS, normalizeDeployOptions, normalizeServiceSpec, type DeployOptions, type ServiceSpec,
} from '../../options'
import { drainTargets, type DrainResult, type InflightSource } from './drain'
import type { FleetMember } from '../fleet/fleet'
import { waitHealthy } from './health-wait'
import { NO_PEERS, SHARED_HEALTH_WAIT_MS, type AppliedChange, type Peers, type Progress } from '../fleet/peers'
import type { ServiceCertificate, ServiceCertificates } from '../tls/service-certificates'
import { STATE_VERSION, type Snapshot, type StateStore } from '../state/state-store'
import { Target, type TargetEvents } from './target'
import { checkHostsAvailable, ownerOfAllHosts, resolveServiceName } from './host-ownership'

/** What the registry needs from the workers. */
export interface Workers extends InflightSource {
  publish(table: RouteTable): Promise<void>
  readonly workerPids: number[]
  /** Why the workers could not listen for HTTPS, if they could not. */
  readonly httpsError: string | undefined
}

interface Service {
  spec: ServiceSpec
  certificate: ServiceCertificate
  targets: Target[]
  /** Replaced targets still finishing their requests, shown by `list`. */
  draining: Target[]
}

export class Registry implements FleetMember {
  readonly #services = new Map<string, Service>()
  /** Per service (removed ones too): the revision of its last change in the shared state. */
  readonly #revisions = new Map<string, number>()
  readonly #locks = new Map<string, Promise<unknown>>()
  readonly #store: StateStore
  readonly #workers: Workers
  readonly #certificates: ServiceCertificates
  readonly #peers: Peers
  #version = 0
  #publishing: Promise<void> = Promise.resolve()
  /** A publish waiting for the one in flight: later requests join it (latest state wins). */
  #queuedPublish: Promise<void> | undefined

  constructor(store: StateStore, workers: Workers, certificates: ServiceCertificates, peers: Peers = NO_PEERS) {
    this.#store = store
    this.#workers = workers
    this.#certificates = certificates
    this.#peers = peers
  }

  /** Restores saved services. Their targets serve at once; health checks resume in the background. */
  restore(snapshot: Snapshot | undefined): void {
    for (const spec of snapshot?.services ?? []) {
      const service: Service = { spec, certificate: this.#certificates.restore(spec), targets: [], draining: [] }
      service.targets = spec.targets.map((address) => this.#createTarget(service, address, 'healthy'))
      this.#services.set(spec.name, service)
      service.targets.forEach((target) => target.beginHealthChecks())
    }
    for (const [name, revision] of Object.entries(snapshot?.revisions ?? {})) this.#revisions.set(name, revision)
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
          drainWebSockets: spec.drainWebSockets,
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
      name: request.name || ownerOfAllHosts(this.services(), request.hosts),
      hosts: request.hosts,
      targets: request.targets,
      healthCheck: request.healthCheck,
      targetTimeoutMs: request.targetTimeoutMs,
      drainTimeoutMs: request.drainTimeoutMs,
      drainWebSockets: request.drainWebSockets,
      tls: request.tls,
      tlsRedirect: request.tlsRedirect,
      tlsCertificatePath: request.tlsCertificatePath,
      tlsPrivateKeyPath: request.tlsPrivateKeyPath,
    })
    const options = normalizeDeployOptions(request)
    checkHostsAvailable(this.services(), spec)
    const certificate = this.#certificates.prepare(spec)
    await this.#store.check?.()
    // Another node's deploy of this service may need its whole deploy timeout and drain.
    const maxWaitMs = options.deployTimeoutMs + SHARED_HEALTH_WAIT_MS + spec.drainTimeoutMs
    return this.#peers.exclusive(spec.name, maxWaitMs, progress, async () => {
      await this.#peers.catchUp(spec.name)
      return this.#withLock(spec.name, () => this.#deploy(spec, certificate, options, progress))
    })
  }

  async remove(request: RemoveRequest, progress: Progress): Promise<string> {
    const name = resolveServiceName(this.services(), request)
    await this.#store.check?.()
    const maxWaitMs = DEFAULT_DEPLOY_TIMEOUT_MS + SHARED_HEALTH_WAIT_MS + (this.#services.get(name)?.spec.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS)
    return this.#peers.exclusive(name, maxWaitMs, progress, async () => {
      await this.#peers.catchUp(name)
      return this.#withLock(name, async () => {
        const service = this.#services.get(name)
        if (!service) throw new ServiceNotFoundError(`service ${name} not found`)
        this.#services.delete(name)
        await this.#publish()
        progress(`stopped routing to ${name}`)
        const revision = await this.#saveChange(name, service, [], progress)
        log('info', 'service removed', { service: name })
        this.#retire(service, service.targets)
        this.#certificates.manage(this.#services.values())
        await Promise.all([
          this.#drain(service, service.targets, progress),
          this.#peers.awaitApplied(name, revision, service.spec.drainTimeoutMs, progress),
        ])
        return `removed ${name}`
      })
    })
  }

  /**
   * Applies a deploy (`spec`) or removal (`undefined`) made through another node of the fleet:
   * health checks from here, switch, drain. Nothing is shared back but the report.
   */
  async applyShared(name: string, revision: number, spec: ServiceSpec | undefined): Promise<AppliedChange | undefined> {
    return this.#withLock(name, async () => {
      if (this.revisionOf(name) >= revision) return undefined
      this.#revisions.set(name, revision)
      const startedAt = Date.now()
      const current = this.#services.get(name)
      if (!spec) {
        if (!current) return { summary: 'had nothing to remove', warning: false }
        this.#services.delete(name)
        await this.#publish()
        await this.#store.save(this.#snapshot())
        this.#retire(current, current.targets)
        this.#certificates.manage(this.#services.values())
        const drained = await this.#drain(current, current.targets, () => {})
        return { summary: `stopped routing and drained after ${formatDuration(Date.now() - startedAt)}${cutNote(drained)}`, warning: false }
      }
      // Redis came back empty and was written anew, or the same spec was redeployed: nothing to do,
      // unless the files of a provided certificate may have been replaced.
      if (current && !spec.tlsCertificatePath && JSON.stringify(current.spec) === JSON.stringify(spec)) {
        return { summary: 'already served this', warning: false }
      }
      const service: Service = { spec, certificate: this.#certificates.restore(spec), targets: [], draining: current?.draining ?? [] }
      const { kept, added } = this.#plan(service, current)
      const warnings: string[] = []
      try {
        await waitHealthy(added, spec, SHARED_HEALTH_WAIT_MS, () => {}, true)
      } catch {
        // The deploying node found them healthy: serve what the fleet serves, and say so.
        added.forEach((target) => target.beginHealthChecks())
        const failing = added.filter((target) => target.state !== 'healthy')
        warnings.push(`switched although ${failing.map((t) => t.address).join(', ')} failed ${failing.length === 1 ? 'its' : 'their'} health checks from there: ${failing.map((t) => t.lastResult?.detail ?? 'no answer').join('; ')}`)
      }
      // A provided certificate must be at the same path on every node.
      if (service.certificate.kind === 'provided' && service.certificate.error) {
        warnings.push(`serves ${spec.name} over HTTP only: ${service.certificate.error}`)
      }
      let replaced: Target[]
      try {
        replaced = await this.#switch(service, current, kept, added)
      } catch (err) {
        // Nothing switched: the new targets are nobody's, so nothing checks them any more.
        added.forEach((target) => target.stop())
        throw err
      }
      // Retired before anything else can fail: a replaced target is never left health-checked.
      this.#retire(service, replaced)
      this.#certificates.manage(this.#services.values())
      await this.#store.save(this.#snapshot())
      const drained = await this.#drain(service, replaced, () => {})
      if (warnings.length > 0) return { summary: warnings.join('; '), warning: true }
      return { summary: `switched and drained after ${formatDuration(Date.now() - startedAt)}${cutNote(drained)}`, warning: false }
    })
  }

  revisionOf(name: string): number {
    return this.#revisions.get(name) ?? 0
  }

  forgetRevisions(): void {
    this.#revisions.clear()
  }

  services(): ServiceSpec[] {
    return [...this.#services.values()].map((service) => service.spec)
  }

  list(): ListResponse {
    const services: ServiceStatus[] = [...this.#services.values()].map(({ spec, targets, draining, certificate }) => ({
      name: spec.name,
      hosts: spec.hosts,
      tls: spec.tls,
      certificates: this.#certificates.status(spec, certificate),
      healthCheck: spec.healthCheck,
      drainTimeoutMs: spec.drainTimeoutMs,
      drainWebSockets: spec.drainWebSockets,
      targetTimeoutMs: spec.targetTimeoutMs,
      targets: [...targets, ...draining].map((target) => ({
        address: target.address,
        health: target.state,
        inflight: this.#workers.inflight(target.address),
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

  async #deploy(spec: ServiceSpec, certificate: ServiceCertificate, options: DeployOptions, progress: Progress): Promise<string> {
    checkHostsAvailable(this.services(), spec)
    const startedAt = Date.now()
    log('info', 'deploy started', { service: spec.name, targets: spec.targets, hosts: spec.hosts })
    const current = this.#services.get(spec.name)
    const service: Service = { spec, certificate, targets: [], draining: current?.draining ?? [] }
    const { kept, added } = this.#plan(service, current)
    const unchanged = added.length === 0 && current !== undefined && current.targets.length === kept.length
    if (options.force && added.length > 0) {
      progress(`--force: switching without waiting for health checks`)
      added.forEach((target) => target.beginHealthChecks())
    } else {
      await waitHealthy(added, spec, options.deployTimeoutMs, progress, current !== undefined)
    }
    try {
      // Another service may have taken one of these hosts while this one waited for health.
      checkHostsAvailable(this.services(), spec)
    } catch (err) {
      added.forEach((target) => target.stop())
      throw err
    }
    const replaced = await this.#switch(service, current, kept, added)
    if (unchanged && JSON.stringify(current.spec) !== JSON.stringify(spec)) {
      progress(`${spec.targets.join(', ')} is already live for ${spec.name}: applied the new options`)
    } else if (unchanged) {
      progress(`${spec.targets.join(', ')} is already live for ${spec.name}`)
    } else {
      log('info', 'switched', { service: spec.name, targets: spec.targets, version: this.#version })
      progress(`switched ${spec.name} to ${spec.targets.join(', ')} on ${this.#workers.workerPids.length} workers`)
    }
    const revision = await this.#saveChange(spec.name, current, added, progress)
    this.#retire(service, replaced)
    this.#certificates.manage(this.#services.values())
    this.#reportCertificates(service, progress)
    await Promise.all([
      this.#drain(service, replaced, progress),
      this.#peers.awaitApplied(spec.name, revision, spec.drainTimeoutMs, progress),
    ])
    log('info', 'deploy finished', { service: spec.name, durationMs: Date.now() - startedAt })
    return unchanged ? `deployed ${spec.name} (no change of target)` : `deployed ${spec.name} in ${formatDuration(Date.now() - startedAt)}`
  }

  /** Which of the current targets stay, and the new ones to add (not yet checked). */
  #plan(service: Service, current: Service | undefined): { kept: Target[]; added: Target[] } {
    const kept = current?.targets.filter((target) => service.spec.targets.includes(target.address)) ?? []
    const added = service.spec.targets
      .filter((address) => !kept.some((target) => target.address === address))
      .map((address) => this.#createTarget(service, address, 'adding'))
    return { kept, added }
  }

  /** Routes the service to its kept and added targets on every worker; returns the replaced ones. */
  async #switch(service: Service, current: Service | undefined, kept: Target[], added: Target[]): Promise<Target[]> {
    service.targets = [...kept, ...added]
    for (const target of service.targets) {
      target.setEvents(this.#targetEvents(service))
      target.setHealthCheck(service.spec.healthCheck)
    }
    this.#services.set(service.spec.name, service)
    await this.#publish()
    return current?.targets.filter((target) => !kept.includes(target)) ?? []
  }

  /** Replaced targets get no more traffic: they drain and are listed as draining meanwhile. */
  #retire(service: Service, replaced: Target[]): void {
    for (const target of replaced) target.beginDraining()
    service.draining = [...service.draining, ...replaced]
  }

  /**
   * Saves a change made here and returns its revision. If it cannot be saved (Redis away, or a
   * host another node took meanwhile), nothing changes: traffic goes back to `previous`.
   */
  async #saveChange(name: string, previous: Service | undefined, added: Target[], progress: Progress): Promise<number> {
    try {
      const revision = await this.#store.save(this.#snapshot(), name)
      this.#revisions.set(name, revision)
      return revision
    } catch (err) {
      if (previous) {
        previous.targets.forEach((target) => target.setEvents(this.#targetEvents(previous)))
        this.#services.set(name, previous)
      } else {
        this.#services.delete(name)
      }
      added.forEach((target) => target.stop())
      await this.#publish()
      log('warn', 'change not saved: switched back', { service: name, error: oneLine(err) })
      progress(previous ? `the change could not be saved: ${name} is back on ${previous.spec.targets.join(', ')}` : `the change could not be saved: ${name} is not routed`)
      throw err
    }
  }

  async #drain(service: Service, targets: Target[], progress: Progress): Promise<DrainResult> {
    if (targets.length === 0) return { durationMs: 0, cut: 0 }
    const addresses = targets.map((target) => target.address)
    // A target still in use by another route (or redeployed meanwhile) is not drained.
    const routed = new Set([...this.#services.values()].flatMap((s) => s.targets.map((target) => target.address)))
    const draining = addresses.filter((address) => !routed.has(address))
    const result = await drainTargets(this.#workers, draining, service.spec.drainTimeoutMs, progress)
    service.draining = service.draining.filter((target) => !targets.includes(target))
    targets.forEach((target) => target.stop())
    log('info', 'drained', { service: service.spec.name, targets: draining, durationMs: result.durationMs, cut: result.cut })
    if (draining.length > 0) {
      progress(result.cut > 0
        ? `drained ${draining.join(', ')} after ${formatDuration(result.durationMs)} (${result.cut} cut at the drain timeout)`
        : `drained ${draining.join(', ')} after ${formatDuration(result.durationMs)}`)
    }
    return result
  }

  #reportCertificates({ spec, certificate }: Service, progress: Progress): void {
    for (const status of this.#certificates.status(spec, certificate)) {
      progress(status.state === 'valid'
        ? `certificate for ${status.host} valid until ${status.notAfter?.slice(0, 10)}`
        : `certificate for ${status.host} is being ordered in the background (see mproxy list)`)
    }
  }




  /** Publishes one table at a time, always the latest state. */
  #publish(): Promise<void> {
    if (this.#queuedPublish) return this.#queuedPublish
    const next = this.#publishing.then(() => {
      // The table is built when this publish starts: it holds every change made while it waited.
      this.#queuedPublish = undefined
      return this.#workers.publish(this.routeTable())
    })
    this.#queuedPublish = next
    this.#publishing = next.catch(() => {})
    return next
  }

  #snapshot(): Snapshot {
    return { version: STATE_VERSION, services: this.services() }
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

function cutNote(result: DrainResult): string {
  return result.cut > 0 ? ` (${result.cut} cut at the drain timeout)` : ''
}
