/**
 * A worker's routing state built from one RouteTable message: host → service → target proxy.
 * Target proxies outlive tables: a target that leaves the table is retired and kept until its
 * last request finishes.
 */
import type { RouteService, RouteTable } from '../ipc/messages'
import { inRollout, rolloutCookie, type RolloutSplit } from './rollout-split'
import type { RequestMetrics, ServiceMetrics } from './request-metrics'
import { Router, type Binding } from './router'
import { TargetProxy, type TargetProxyEvents, type UpstreamSettings } from './target-proxy'

export class ServiceRoute {
  readonly name: string
  readonly hosts: readonly string[]
  readonly pathPrefixes: readonly string[]
  readonly stripPathPrefix: boolean
  readonly scopeCookiePaths: boolean
  readonly targetTimeoutMs: number
  readonly tlsRedirect: boolean
  readonly acmeChallenges: boolean
  /** Where its requests are counted; undefined when metrics are off. */
  readonly metrics: ServiceMetrics | undefined
  readonly excludeMetricsPaths: readonly string[]
  readonly #targets: TargetProxy[]
  readonly #rolloutTargets: TargetProxy[]
  readonly #rolloutSplit: RolloutSplit | undefined
  #next = 0
  #nextRollout = 0

  constructor(service: RouteService, targets: TargetProxy[], rolloutTargets: TargetProxy[], metrics: ServiceMetrics | undefined) {
    this.name = service.name
    this.hosts = service.hosts
    this.pathPrefixes = service.pathPrefixes
    this.stripPathPrefix = service.stripPathPrefix
    this.scopeCookiePaths = service.scopeCookiePaths
    this.targetTimeoutMs = service.targetTimeoutMs
    this.tlsRedirect = service.tlsRedirect
    this.acmeChallenges = service.acmeChallenges
    this.metrics = metrics
    this.excludeMetricsPaths = service.excludeMetricsPaths
    this.#targets = targets
    this.#rolloutTargets = rolloutTargets
    this.#rolloutSplit = rolloutTargets.length > 0 ? service.rolloutSplit : undefined
  }

  /** Every target it may send to, rollout ones included. */
  get targets(): readonly TargetProxy[] {
    return this.#rolloutTargets.length === 0 ? this.#targets : [...this.#targets, ...this.#rolloutTargets]
  }

  /**
   * Round-robin over the slot the request belongs to (the primary only lists healthy targets):
   * the rollout targets for the `kamal-rollout` cookie values the split picks, else the active ones.
   */
  pick(cookieHeader: string | undefined): TargetProxy {
    if (this.#rolloutSplit && inRollout(this.#rolloutSplit, rolloutCookie(cookieHeader))) {
      const target = this.#rolloutTargets[this.#nextRollout]
      this.#nextRollout = (this.#nextRollout + 1) % this.#rolloutTargets.length
      return target
    }
    const target = this.#targets[this.#next]
    this.#next = (this.#next + 1) % this.#targets.length
    return target
  }
}

export class WorkerRoutes {
  version = 0
  /** Key thumbprint of the ACME account: the answer to a challenge is `token.thumbprint`. */
  acmeThumbprint = ''
  /** Where requests no service matched are counted (service ""); undefined when metrics are off. */
  readonly unroutedMetrics: ServiceMetrics | undefined
  #router = new Router<ServiceRoute>([])
  #services: ServiceRoute[] = []
  readonly #targets = new Map<string, TargetProxy>()
  readonly #events: TargetProxyEvents
  readonly #settings: UpstreamSettings
  readonly #metrics: RequestMetrics | undefined

  constructor(events: TargetProxyEvents, settings: UpstreamSettings, metrics?: RequestMetrics) {
    this.#events = events
    this.#settings = settings
    this.#metrics = metrics
    this.unroutedMetrics = metrics?.service('')
  }

  /** The service (and the prefix it matched) for a Host header and request target. */
  match(host: string | undefined, target: string): Binding<ServiceRoute> | undefined {
    return this.#router.match(host, target)
  }

  targets(): IterableIterator<TargetProxy> {
    return this.#targets.values()
  }

  install(table: RouteTable): void {
    const live = new Set<string>()
    const proxyFor = (address: string) => {
      live.add(address)
      let target = this.#targets.get(address)
      if (!target) {
        target = new TargetProxy(address, this.#events, this.#settings)
        this.#targets.set(address, target)
      } else if (target.retired) {
        target.revive()
      }
      return target
    }
    const services = table.services.map((service) => new ServiceRoute(service, service.targets.map(proxyFor), service.rolloutTargets.map(proxyFor), this.#metrics?.service(service.name)))
    // The deploy that replaces a target decides whether its WebSockets drain or close now.
    const drainWebSockets = new Map(table.services.map((service) => [service.name, service.drainWebSockets]))
    for (const old of this.#services) {
      for (const target of old.targets) target.drainWebSockets = drainWebSockets.get(old.name) ?? target.drainWebSockets
    }
    this.#services = services
    this.#router = new Router(services)
    this.version = table.version
    this.acmeThumbprint = table.acmeThumbprint
    for (const [address, target] of this.#targets) {
      if (!live.has(address) && !target.retired) target.retire()
    }
    this.collectRetired()
  }

  /** Frees retired targets with nothing left in flight. */
  collectRetired(): void {
    for (const [address, target] of this.#targets) {
      if (target.retired && target.inflight === 0) {
        target.destroy()
        this.#targets.delete(address)
      }
    }
  }

  cut(addresses: readonly string[]): void {
    for (const address of addresses) {
      const target = this.#targets.get(address)
      if (target?.retired) target.cut()
    }
  }
}
