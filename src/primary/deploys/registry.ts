/**
 * The deployment registry: the services, their targets and options. The only code that
 * mutates them. Each change runs under its service's lock (and, in a fleet, the fleet's lock)
 * as a Deployment (see deployment.ts), which publishes the new route table to the workers,
 * saves the state and drains what it replaced.
 */
import { ServiceNotFoundError } from '../../errors'
import type { DeployRequest, ListResponse, RemoveRequest } from '../../control/protocol'
import type { RouteTable } from '../../ipc/messages'
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'
import {
  DEFAULT_DEPLOY_TIMEOUT_MS, DEFAULT_DRAIN_TIMEOUT_MS, normalizeDeployOptions, normalizePathPrefixes, normalizeServiceSpec, type ServiceSpec,
} from '../../options'
import type { FleetMember } from '../fleet/fleet'
import { NO_PEERS, SHARED_HEALTH_WAIT_MS, type AppliedChange, type Peers, type Progress } from '../fleet/peers'
import type { ServiceCertificates } from '../tls/service-certificates'
import { STATE_VERSION, type Snapshot, type StateStore } from '../state/state-store'
import { buildRouteTable } from '../workers/route-table-builder'
import { TablePublisher } from '../workers/table-publisher'
import { Deployment, cutNote, type ChangeRules, type DeploymentHost } from './deployment'
import type { InflightSource } from './drain'
import { checkHostsAvailable, ownerOfAllHosts, resolveServiceName } from './host-ownership'
import type { Service } from './service'
import { serviceStatus } from './service-status'
import { Target, type TargetEvents } from './target'

/** What the registry needs from the workers. */
export interface Workers extends InflightSource {
  publish(table: RouteTable): Promise<void>
  readonly workerPids: number[]
  /** Why the workers could not listen for HTTPS, if they could not. */
  readonly httpsError: string | undefined
}

/** Nothing to tell: a change from the fleet reports its outcome, not its steps. */
const SILENT: Progress = () => {}

export class Registry implements FleetMember {
  readonly #services = new Map<string, Service>()
  /** Per service (removed ones too): the revision of its last change in the shared state. */
  readonly #revisions = new Map<string, number>()
  readonly #locks = new Map<string, Promise<unknown>>()
  readonly #store: StateStore
  readonly #workers: Workers
  readonly #certificates: ServiceCertificates
  readonly #peers: Peers
  readonly #tables: TablePublisher
  readonly #deploymentHost: DeploymentHost
  #version = 0

  constructor(store: StateStore, workers: Workers, certificates: ServiceCertificates, peers: Peers = NO_PEERS) {
    this.#store = store
    this.#workers = workers
    this.#certificates = certificates
    this.#peers = peers
    this.#tables = new TablePublisher((table) => workers.publish(table), () => this.routeTable())
    this.#deploymentHost = this.#hostForDeployments()
  }

  /** Restores saved services. Their targets serve at once; health checks resume in the background. */
  restore(snapshot: Snapshot | undefined): void {
    for (const spec of snapshot?.services ?? []) {
      const service: Service = { spec, certificate: this.#certificates.restore(spec), targets: [], draining: [] }
      service.targets = spec.targets.map((address) => new Target(address, spec.healthCheck, this.#targetEvents(service), 'healthy'))
      this.#services.set(spec.name, service)
      service.targets.forEach((target) => target.beginHealthChecks())
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
      tlsRedirect: certificates.redirects(service.spec, service.certificate),
      acmeChallenges: service.certificate.kind === 'automatic',
    }))
    return buildRouteTable(++this.#version, services, {
      certificates: certificates.routeCertificates(this.#services.values()),
      acmeThumbprint: certificates.thumbprint,
      acmeTlsChallenges: certificates.tlsChallenges(),
    })
  }

  async deploy(request: DeployRequest, progress: Progress): Promise<string> {
    const spec = normalizeServiceSpec({
      name: request.name || ownerOfAllHosts(this.services(), request.hosts, normalizePathPrefixes(request.pathPrefixes)),
      hosts: request.hosts,
      targets: request.targets,
      pathPrefixes: request.pathPrefixes,
      stripPathPrefix: request.stripPathPrefix,
      scopeCookiePaths: request.scopeCookiePaths,
      healthCheck: request.healthCheck,
      targetTimeoutMs: request.targetTimeoutMs,
      drainTimeoutMs: request.drainTimeoutMs,
      drainWebSockets: request.drainWebSockets,
      tls: request.tls,
      tlsRedirect: request.tlsRedirect,
      tlsCertificatePath: request.tlsCertificatePath,
      tlsPrivateKeyPath: request.tlsPrivateKeyPath,
      canonicalHost: request.canonicalHost,
      forwardHeaders: request.forwardHeaders,
      logRequestHeaders: request.logRequestHeaders,
      logResponseHeaders: request.logResponseHeaders,
    })
    const options = normalizeDeployOptions(request)
    checkHostsAvailable(this.services(), spec)
    const certificate = this.#certificates.prepare(spec)
    await this.#store.check?.()
    // Another node's deploy of this service may need its whole deploy timeout and drain.
    const maxWaitMs = options.deployTimeoutMs + SHARED_HEALTH_WAIT_MS + spec.drainTimeoutMs
    return this.#peers.exclusive(spec.name, maxWaitMs, progress, async () => {
      await this.#peers.catchUp(spec.name)
      return this.#withLock(spec.name, async () => {
        checkHostsAvailable(this.services(), spec)
        log('info', 'deploy started', { service: spec.name, targets: spec.targets, hosts: spec.hosts })
        const deployment = new Deployment(this.#deploymentHost, {
          ...this.#localRules(spec.name, spec.drainTimeoutMs, progress),
          healthWaitMs: options.deployTimeoutMs,
          force: options.force,
          // Another service may have taken one of these hosts while this one waited for health.
          beforeSwitch: () => checkHostsAvailable(this.services(), spec),
        })
        const result = await deployment.deploy(spec, certificate)
        log('info', 'deploy finished', { service: spec.name, durationMs: result.durationMs })
        return result.unchanged ? `deployed ${spec.name} (no change of target)` : `deployed ${spec.name} in ${formatDuration(result.durationMs)}`
      })
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
        const rules = { ...this.#localRules(name, service.spec.drainTimeoutMs, progress), healthWaitMs: 0, force: false }
        await new Deployment(this.#deploymentHost, rules).remove(service)
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
      const current = this.#services.get(name)
      const deployment = new Deployment(this.#deploymentHost, {
        progress: SILENT,
        healthWaitMs: SHARED_HEALTH_WAIT_MS,
        force: false,
        onUnhealthy: 'warn',
        // Redis holds the change: only the local copy is written here.
        save: async () => {
          await this.#store.save(this.#snapshot())
          return revision
        },
        undoUnsaved: false,
        awaitPeers: async () => {},
      })
      if (!spec) {
        if (!current) return { summary: 'had nothing to remove', warning: false }
        const { durationMs, drained } = await deployment.remove(current)
        return { summary: `stopped routing and drained after ${formatDuration(durationMs)}${cutNote(drained)}`, warning: false }
      }
      // Redis came back empty and was written anew, or the same spec was redeployed: nothing to do,
      // unless the files of a provided certificate may have been replaced.
      if (current && !spec.tlsCertificatePath && JSON.stringify(current.spec) === JSON.stringify(spec)) {
        return { summary: 'already served this', warning: false }
      }
      const certificate = this.#certificates.restore(spec)
      const { durationMs, drained, warnings } = await deployment.deploy(spec, certificate)
      // A provided certificate must be at the same path on every node.
      if (certificate.kind === 'provided' && certificate.error) warnings.push(`serves ${spec.name} over HTTP only: ${certificate.error}`)
      if (warnings.length > 0) return { summary: warnings.join('; '), warning: true }
      return { summary: `switched and drained after ${formatDuration(durationMs)}${cutNote(drained)}`, warning: false }
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
    for (const service of this.#services.values()) service.targets.forEach((target) => target.stop())
  }

  // Private

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
    const services = this.#services
    return {
      current: (name) => services.get(name),
      route: (name, service) => {
        if (service) services.set(name, service)
        else services.delete(name)
      },
      routedAddresses: () => new Set([...services.values()].flatMap((service) => service.targets.map((target) => target.address))),
      publish: () => this.#tables.publish(),
      servicesChanged: () => this.#certificates.manage(services.values()),
      createTarget: (service, address) => new Target(address, service.spec.healthCheck, this.#targetEvents(service), 'adding'),
      targetEvents: (service) => this.#targetEvents(service),
      workers: this.#workers,
      certificates: this.#certificates,
    }
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
