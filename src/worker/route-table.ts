/**
 * A worker's routing state built from one RouteTable message: host → service → target proxy.
 * Target proxies outlive tables: a target that leaves the table is retired and kept until its
 * last request finishes. So do the gates of paused services, which hold their requests until a
 * table ends the pause.
 */
import type { IncomingMessage } from 'node:http'
import type { HeldCounts, RouteService, RouteTable } from '../ipc/messages'
import type { BufferingOptions, ServiceState } from '../options'
import type { Exchange } from './exchange'
import { BUILT_IN_PAGES, ErrorPages, sendErrorPage } from './error-pages'
import { PauseGate, type GatedRoute } from './pause-gate'
import type { RequestMetrics, ServiceMetrics } from './request-metrics'
import { hasWriterAffinity, isRead } from './read-split'
import { inRollout, rolloutCookie, type RolloutSplit } from './rollout-split'
import { HeaderLog } from './header-log'
import { urlHost, type RedirectRules } from './redirects'
import { Router, type Binding } from './router'
import { TargetProxy, type TargetProxyEvents, type UpstreamSettings } from './target-proxy'

export class ServiceRoute implements GatedRoute, RedirectRules {
  readonly name: string
  readonly hosts: readonly string[]
  readonly pathPrefixes: readonly string[]
  readonly stripPathPrefix: boolean
  readonly scopeCookiePaths: boolean
  readonly targetTimeoutMs: number
  readonly tlsRedirect: boolean
  readonly acmeChallenges: boolean
  readonly drainWebSockets: boolean
  readonly state: ServiceState
  readonly maxPauseMs: number
  /** The health-check path without its query: answered by the worker while paused or stopped. */
  readonly healthCheckPath: string
  readonly pages: ErrorPages
  /** Where its requests wait while it is paused. */
  gate: PauseGate | undefined = undefined
  /** Where its requests are counted; undefined when metrics are off. */
  readonly metrics: ServiceMetrics | undefined
  readonly excludeMetricsPaths: readonly string[]
  /** Its buffering options when any applies (buffering on, or a size limit), else undefined. */
  readonly bodyRules: BufferingOptions | undefined
  readonly canonicalHost: string
  /** The client's forwarding headers are trusted, whoever the peer is. */
  readonly forwardHeaders: boolean
  /** Extra access log fields; undefined when the service logs no header. */
  readonly headerLog: HeaderLog | undefined
  /** Writer affinity in ms; 0 when off (see read-split.ts). */
  readonly writerAffinityMs: number
  readonly readTargetWebSockets: boolean
  readonly #targets: TargetProxy[]
  readonly #readTargets: TargetProxy[]
  readonly #rolloutTargets: TargetProxy[]
  readonly #rolloutSplit: RolloutSplit | undefined
  #next = 0
  #nextReader = 0
  #nextRollout = 0

  constructor(service: RouteService, slots: TargetSlots, metrics: ServiceMetrics | undefined) {
    this.name = service.name
    this.hosts = service.hosts
    this.pathPrefixes = service.pathPrefixes
    this.stripPathPrefix = service.stripPathPrefix
    this.scopeCookiePaths = service.scopeCookiePaths
    this.targetTimeoutMs = service.targetTimeoutMs
    this.tlsRedirect = service.tlsRedirect
    this.acmeChallenges = service.acmeChallenges
    this.drainWebSockets = service.drainWebSockets
    this.state = service.state
    this.maxPauseMs = service.maxPauseMs
    this.healthCheckPath = service.healthCheckPath.split('?')[0]
    const custom = Object.keys(service.errorPages).length > 0
    this.pages = custom || service.stopMessage !== '' ? new ErrorPages(service.errorPages, service.stopMessage) : BUILT_IN_PAGES
    this.metrics = metrics
    this.excludeMetricsPaths = service.excludeMetricsPaths
    const { buffering } = service
    const anyRule = buffering.requests || buffering.responses || buffering.maxRequestBodyBytes > 0 || buffering.maxResponseBodyBytes > 0
    this.bodyRules = anyRule ? buffering : undefined
    this.canonicalHost = urlHost(service.canonicalHost)
    this.forwardHeaders = service.forwardHeaders
    this.headerLog = HeaderLog.for(service.logRequestHeaders, service.logResponseHeaders)
    this.writerAffinityMs = service.writerAffinityMs
    this.readTargetWebSockets = service.readTargetWebSockets
    this.#targets = slots.targets
    this.#readTargets = slots.readTargets
    this.#rolloutTargets = slots.rolloutTargets
    this.#rolloutSplit = slots.rolloutTargets.length > 0 ? service.rolloutSplit : undefined
  }

  /** Every target it may send to, read and rollout ones included. */
  get targets(): readonly TargetProxy[] {
    if (this.#readTargets.length === 0 && this.#rolloutTargets.length === 0) return this.#targets
    return [...this.#targets, ...this.#readTargets, ...this.#rolloutTargets]
  }

  /**
   * Round-robin over the slot the request belongs to (the primary only lists healthy targets):
   * the rollout targets for the `kamal-rollout` cookie values the split picks, the read targets
   * for the reads they may take, else the active ones. None: no target can take requests.
   * Cookies are read only during a rollout or with read targets: Node builds `req.headers` from
   * the raw headers on first use, an object per request otherwise.
   */
  pick(req: IncomingMessage): TargetProxy | undefined {
    if (this.#rolloutSplit && inRollout(this.#rolloutSplit, rolloutCookie(req.headers.cookie))) {
      const target = this.#rolloutTargets[this.#nextRollout]
      this.#nextRollout = (this.#nextRollout + 1) % this.#rolloutTargets.length
      return target
    }
    if (this.#readTargets.length > 0 && this.#takesReadTarget(req)) {
      const target = this.#readTargets[this.#nextReader]
      this.#nextReader = (this.#nextReader + 1) % this.#readTargets.length
      return target
    }
    if (this.#targets.length === 0) return undefined
    const target = this.#targets[this.#next]
    this.#next = (this.#next + 1) % this.#targets.length
    return target
  }

  /** Proxies to the next target, or answers 503 when the service has none to offer. */
  dispatch(exchange: Exchange): void {
    exchange.writerAffinityMs = this.writerAffinityMs
    const target = this.pick(exchange.req)
    if (target) target.web(exchange)
    else sendErrorPage(exchange.res, 503, this.pages)
  }

  /**
   * A read (an upgrade only when upgrades count as reads) from a client that has not just
   * written: the only requests a read target gets.
   */
  #takesReadTarget(req: IncomingMessage): boolean {
    if (!isRead(req.method) || (req.headers.upgrade !== undefined && !this.readTargetWebSockets)) return false
    return this.writerAffinityMs === 0 || !hasWriterAffinity(req.headers.cookie, Date.now())
  }
}

/** A service's target proxies, by slot. */
export interface TargetSlots {
  targets: TargetProxy[]
  readTargets: TargetProxy[]
  rolloutTargets: TargetProxy[]
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
  /** Per paused service, the requests it holds. */
  readonly #gates = new Map<string, PauseGate>()
  readonly #events: TargetProxyEvents
  readonly #settings: UpstreamSettings
  readonly #onHeldChange: () => void
  readonly #metrics: RequestMetrics | undefined

  /** `onHeldChange`: the number of requests some paused service holds changed. */
  constructor(events: TargetProxyEvents, settings: UpstreamSettings, metrics?: RequestMetrics, onHeldChange: () => void = () => {}) {
    this.#events = events
    this.#settings = settings
    this.#metrics = metrics
    this.unroutedMetrics = metrics?.service('')
    this.#onHeldChange = onHeldChange
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
    const services = table.services.map((service) => new ServiceRoute(service, {
      targets: service.targets.map(proxyFor),
      readTargets: service.readTargets.map(proxyFor),
      rolloutTargets: service.rolloutTargets.map(proxyFor),
    }, this.#metrics?.service(service.name)))
    const byName = new Map(services.map((service) => [service.name, service]))
    for (const old of this.#services) {
      const next = byName.get(old.name)
      // The deploy that replaces a target decides whether its WebSockets drain or close now.
      for (const target of old.targets) target.drainWebSockets = next?.drainWebSockets ?? target.drainWebSockets
      // Paused or stopped, a service's WebSockets close (clients reconnect once it serves again), unless they drain.
      if (old.state === 'running' && next && next.state !== 'running' && !next.drainWebSockets) {
        for (const target of next.targets) target.closeWebSockets(next.name)
      }
    }
    for (const service of services) {
      if (service.state !== 'paused') continue
      let gate = this.#gates.get(service.name)
      if (!gate) this.#gates.set(service.name, (gate = new PauseGate(service.name, this.#onHeldChange)))
      service.gate = gate
    }
    this.#services = services
    this.#router = new Router(services)
    this.version = table.version
    this.acmeThumbprint = table.acmeThumbprint
    // Held requests go on only once the new routes are in place.
    for (const [name, gate] of this.#gates) {
      const route = byName.get(name)
      if (route?.state === 'paused') continue
      this.#gates.delete(name)
      gate.settle(route)
    }
    for (const [address, target] of this.#targets) {
      if (!live.has(address) && !target.retired) target.retire()
    }
    this.collectRetired()
  }

  /** Answers 504 to held requests past their max pause. */
  expireHeld(now: number): void {
    for (const gate of this.#gates.values()) gate.expire(now)
  }

  /** The worker stops: requests still held get what a request cut at a drain's end gets, 504. */
  cutHeld(): void {
    for (const gate of this.#gates.values()) gate.expire(Infinity, 'held requests cut: the worker stops')
  }

  /** Requests held per paused service (none: left out). */
  held(): HeldCounts {
    const counts: HeldCounts = {}
    for (const [name, gate] of this.#gates) if (gate.size > 0) counts[name] = gate.size
    return counts
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

  /** Cuts what is in flight on these retired targets; with `service`, that service's requests on them, retired or not. */
  cut(addresses: readonly string[], service?: string): void {
    for (const address of addresses) {
      const target = this.#targets.get(address)
      if (service !== undefined) target?.cut(service)
      else if (target?.retired) target.cut()
    }
  }
}
