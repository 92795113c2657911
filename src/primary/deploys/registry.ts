/**
 * The deployment registry: the services, their targets and options. The only code that
 * mutates them. Each change runs under its service's lock (and, in a fleet, the fleet's lock)
 * as a Deployment (see deployment.ts), which publishes the new route table to the workers,
 * saves the state and drains what it replaced.
 */
import { ServiceNotFoundError } from '../../errors'
import type { DeployRequest, ListResponse, RemoveRequest, ServiceSelector } from '../../control/protocol'
import type { RouteTable } from '../../ipc/messages'
import { formatDuration } from '../../lib/duration'
import { KeyedLock } from '../../lib/keyed-lock'
import { log } from '../../lib/logger'
import { DEFAULT_DEPLOY_TIMEOUT_MS, DEFAULT_DRAIN_TIMEOUT_MS, type DeployOptions, type ServiceSpec } from '../../options'
import { checkStateChange, normalizeDeployOptions, normalizePathPrefixes, normalizeServiceSpec } from '../../service-spec'
import type { FleetMember } from '../fleet/fleet'
import { NO_PEERS, SHARED_HEALTH_WAIT_MS, type AppliedChange, type Peers, type Progress } from '../fleet/peers'
import type { ServiceCertificates } from '../tls/service-certificates'
import { STATE_VERSION, type Snapshot, type StateStore } from '../state/state-store'
import { buildRouteTable } from '../workers/route-table-builder'
import { TablePublisher } from '../workers/table-publisher'
import { Deployment, type ChangeRules, type DeploymentHost, type DeploymentResult } from './deployment'
import { registryHost } from './deployment-host'
import { applySharedChange, sharedRules } from './shared-change'
import { keptState, specAfter, type StateCommand, type StateRequest } from './state-change'
import type { InflightSource } from './drain'
import { loadErrorPages, loadErrorPagesOrBuiltIn } from './error-page-files'
import { checkHostsAvailable, ownerOfAllHosts, resolveServiceName } from './host-ownership'
import { restoredService, routedTargets, type Service } from './service'
import { serviceStatus } from './service-status'
import { Target, type TargetEvents } from './target'

/** What the registry needs from the workers. */
export interface Workers extends InflightSource {
  publish(table: RouteTable): Promise<void>
  /** Requests the workers hold for a paused service. */
  held(service: string): number
  readonly workerPids: number[]
  /** Why the workers could not listen for HTTPS, if they could not. */
  readonly httpsError: string | undefined
}

/** Hears how each deploy made through this node ended (the metrics). */
export interface DeployObserver {
  deployed(service: string, result: 'success' | 'failure', durationMs: number): void
}

export class Registry implements FleetMember {
  readonly #services = new Map<string, Service>()
  /** Per service (removed ones too): the revision of its last change in the shared state. */
  readonly #revisions = new Map<string, number>()
  readonly #locks = new KeyedLock()
  readonly #store: StateStore
  readonly #workers: Workers
  readonly #certificates: ServiceCertificates
  readonly #peers: Peers
  readonly #tables: TablePublisher
  readonly #deploymentHost: DeploymentHost
  readonly #observer: DeployObserver | undefined
  #version = 0

  constructor(store: StateStore, workers: Workers, certificates: ServiceCertificates, peers: Peers = NO_PEERS, observer?: DeployObserver) {
    this.#observer = observer
    this.#store = store
    this.#workers = workers
    this.#certificates = certificates
    this.#peers = peers
    this.#tables = new TablePublisher((table) => workers.publish(table), () => this.routeTable())
    this.#deploymentHost = this.#hostForDeployments()
  }

  /**
   * Restores saved services, in the state they were saved in. Their targets serve at once; health
   * checks resume in the background. Error pages that cannot be read now give way to the built-in ones.
   */
  async restore(snapshot: Snapshot | undefined): Promise<void> {
    for (const spec of snapshot?.services ?? []) {
      const { pages, error } = await loadErrorPagesOrBuiltIn(spec.errorPagesPath)
      if (error) log('error', 'cannot load error pages: serving the built-in ones', { service: spec.name, error })
      const service = restoredService(spec, this.#certificates.restore(spec), pages, (restored) => this.#targetEvents(restored))
      this.#services.set(spec.name, service)
    }
    for (const [name, revision] of Object.entries(snapshot?.revisions ?? {})) this.#revisions.set(name, revision)
    if (this.#services.size > 0) log('info', 'state restored', { services: [...this.#services.keys()] })
    this.#certificates.manage(this.#services.values())
  }

  /** A certificate or challenge changed: resolves once every worker has the new table. */
  certificatesChanged(): Promise<void> {
    return this.#tables.publish()
  }

  routeTable(): RouteTable {
    const certificates = this.#certificates
    const services = [...this.#services.values()].map((service) => ({
      spec: service.spec,
      targets: service.targets,
      readTargets: service.readTargets,
      rolloutTargets: service.rolloutTargets,
      tlsRedirect: certificates.redirects(service.spec, service.certificate),
      acmeChallenges: service.certificate.kind === 'automatic',
      errorPages: service.errorPages,
    }))
    return buildRouteTable(++this.#version, services, {
      certificates: certificates.routeCertificates(this.#services.values()),
      acmeThumbprint: certificates.thumbprint,
      acmeTlsChallenges: certificates.tlsChallenges(),
    })
  }

  async deploy(request: DeployRequest, progress: Progress): Promise<string> {
    // The request's fields are the spec's; the deploy options are read apart below.
    const name = request.name || ownerOfAllHosts(this.services(), request.hosts, normalizePathPrefixes(request.pathPrefixes))
    const spec = normalizeServiceSpec({ ...request, name })
    const options = normalizeDeployOptions(request)
    return this.#observed(spec.name, async () => {
      checkHostsAvailable(this.services(), spec)
      const certificate = this.#certificates.prepare(spec)
      const errorPages = await loadErrorPages(spec.errorPagesPath)
      await this.#store.check?.()
      // Another node's deploy of this service may need its whole deploy timeout and drain.
      const maxWaitMs = options.deployTimeoutMs + SHARED_HEALTH_WAIT_MS + spec.drainTimeoutMs
      return this.#peers.exclusive(spec.name, maxWaitMs, progress, async () => {
        await this.#peers.catchUp(spec.name)
        return this.#locks.run(spec.name, async () => {
          checkHostsAvailable(this.services(), spec)
          // A deploy never touches the rollout slot, nor a pause or stop.
          const current = this.#services.get(spec.name)?.spec
          const kept = keptState(current)
          if (kept) progress(kept.note)
          const next: ServiceSpec = { ...spec, ...kept?.fields, ...(current?.rollout && { rollout: current.rollout }) }
          log('info', 'deploy started', { service: spec.name, targets: spec.targets, hosts: spec.hosts })
          const result = await this.#deployment(next, options, progress).deploy(next, certificate, errorPages)
          log('info', 'deploy finished', { service: spec.name, durationMs: result.durationMs })
          return result.unchanged ? `deployed ${spec.name} (no change of target)` : `deployed ${spec.name} in ${formatDuration(result.durationMs)}`
        })
      })
    })
  }

  /**
   * Changes an existing service's spec (`edit` gets the current one) through the same sequence
   * as a deploy: new targets are health-checked, replaced ones drained.
   */
  update(name: string, edit: (current: ServiceSpec) => ServiceSpec, options: DeployOptions, progress: Progress): Promise<DeploymentResult> {
    return this.#changeService({ name }, undefined, progress, (service) => {
      const spec = normalizeServiceSpec(edit(service.spec))
      return this.#deployment(spec, options, progress).deploy(spec, service.certificate, service.errorPages)
    }, options.deployTimeoutMs)
  }

  async remove(request: RemoveRequest, progress: Progress): Promise<string> {
    return this.#changeService(request, undefined, progress, async (service, deployment) => {
      await deployment.remove(service)
      return `removed ${service.spec.name}`
    })
  }

  /**
   * `pause`: new requests are held until `resume` (or answered 504 after the max pause). `stop`:
   * new and held requests get the 503 page. Either way, what was in flight then drains.
   * `resume`: proxies again, held requests first.
   */
  async changeState(command: StateCommand, request: StateRequest, progress: Progress): Promise<string> {
    checkStateChange(request.drainTimeoutMs, request.maxPauseMs)
    return this.#changeService(request, request.drainTimeoutMs, progress, async (service, deployment, drainMs) => {
      const spec = specAfter(command, request, service.spec)
      if (!spec) return `${service.spec.name} is already running`
      const { durationMs } = await deployment.changeState(service, spec, drainMs)
      return `${command === 'resume' ? 'resumed' : spec.state} ${spec.name} in ${formatDuration(durationMs)}`
    })
  }

  /**
   * Applies a deploy (`spec`) or removal (`undefined`) made through another node of the fleet:
   * health checks from here, switch, drain. Nothing is shared back but the report.
   */
  async applyShared(name: string, revision: number, spec: ServiceSpec | undefined): Promise<AppliedChange | undefined> {
    return this.#locks.run(name, async () => {
      if (this.revisionOf(name) >= revision) return undefined
      this.#revisions.set(name, revision)
      // Redis holds the change: only the local copy is written here.
      const save = async () => {
        await this.#store.save(this.#snapshot())
        return revision
      }
      const deployment = new Deployment(this.#deploymentHost, sharedRules(save))
      return applySharedChange(deployment, this.#services.get(name), spec, this.#certificates)
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
    const services = [...this.#services.values()].map((service) => serviceStatus(service, this.#certificates, this.#workers))
    return { services: services.sort((a, b) => a.name.localeCompare(b.name)) }
  }

  get serviceCount(): number {
    return this.#services.size
  }

  get tableVersion(): number {
    return this.#version
  }

  stopHealthChecks(): void {
    for (const service of this.#services.values()) routedTargets(service).forEach((target) => target.stop())
  }

  // Private

  /** Runs `work` on the service a command names, under the fleet's and the service's locks. */
  async #changeService<T>(
    selector: ServiceSelector, drainTimeoutMs: number | undefined, progress: Progress,
    work: (service: Service, deployment: Deployment, drainTimeoutMs: number) => Promise<T>,
    deployTimeoutMs = DEFAULT_DEPLOY_TIMEOUT_MS,
  ): Promise<T> {
    const name = resolveServiceName(this.services(), selector)
    await this.#store.check?.()
    const drainMs = drainTimeoutMs ?? this.#services.get(name)?.spec.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS
    const maxWaitMs = deployTimeoutMs + SHARED_HEALTH_WAIT_MS + drainMs
    return this.#peers.exclusive(name, maxWaitMs, progress, async () => {
      await this.#peers.catchUp(name)
      return this.#locks.run(name, async () => {
        const service = this.#services.get(name)
        if (!service) throw new ServiceNotFoundError(`service ${name} not found`)
        const drainMs = drainTimeoutMs ?? service.spec.drainTimeoutMs
        const rules = { ...this.#localRules(name, drainMs, progress), healthWaitMs: 0, force: false }
        return work(service, new Deployment(this.#deploymentHost, rules), drainMs)
      })
    })
  }

  /** A change made here that health-checks new targets for up to the deploy timeout. */
  #deployment(spec: ServiceSpec, options: DeployOptions, progress: Progress): Deployment {
    return new Deployment(this.#deploymentHost, {
      ...this.#localRules(spec.name, spec.drainTimeoutMs, progress),
      healthWaitMs: options.deployTimeoutMs,
      force: options.force,
      // Another service may have taken one of these hosts while this one waited for health.
      beforeSwitch: () => checkHostsAvailable(this.services(), spec),
    })
  }

  /** Runs a deploy made here and tells the observer how it ended. */
  async #observed(service: string, deploy: () => Promise<string>): Promise<string> {
    const startedAt = Date.now()
    const report = (result: 'success' | 'failure'): void => this.#observer?.deployed(service, result, Date.now() - startedAt)
    return deploy().then((message) => { report('success'); return message }, (err: unknown) => { report('failure'); throw err })
  }

  /** The rules of a change made here: it fails on unhealthy targets, and is undone if Redis refuses it. */
  #localRules(name: string, drainTimeoutMs: number, progress: Progress): Omit<ChangeRules, 'healthWaitMs' | 'force'> {
    return {
      progress,
      onUnhealthy: 'fail',
      save: async () => {
        const revision = await this.#store.save(this.#snapshot(), name)
        this.#revisions.set(name, revision)
        return revision
      },
      undoUnsaved: true,
      awaitPeers: (revision) => this.#peers.awaitApplied(name, revision, drainTimeoutMs, progress),
    }
  }

  #hostForDeployments(): DeploymentHost {
    return registryHost(this.#services, {
      publish: () => this.#tables.publish(),
      targetEvents: (service) => this.#targetEvents(service),
      workers: this.#workers,
      certificates: this.#certificates,
    })
  }

  #targetEvents(service: Service): TargetEvents {
    return {
      onStateChange: () => {
        // Health changes of live targets change who gets traffic.
        if (this.#services.get(service.spec.name) === service) void this.#tables.publish().catch(() => {})
      },
    }
  }

  #snapshot(): Snapshot {
    return { version: STATE_VERSION, services: this.services() }
  }
}
