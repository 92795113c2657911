/**
 * A worker's routing state built from one RouteTable message: host → service → target proxy.
 * Target proxies outlive tables: a target that leaves the table is retired and kept until its
 * last request finishes.
 */
import type { RouteService, RouteTable } from '../ipc/messages'
import { HeaderLog } from './header-log'
import { urlHost, type RedirectRules } from './redirects'
import { Router, type Binding } from './router'
import { TargetProxy, type TargetProxyEvents, type UpstreamSettings } from './target-proxy'

export class ServiceRoute implements RedirectRules {
  readonly name: string
  readonly hosts: readonly string[]
  readonly pathPrefixes: readonly string[]
  readonly stripPathPrefix: boolean
  readonly scopeCookiePaths: boolean
  readonly targetTimeoutMs: number
  readonly tlsRedirect: boolean
  readonly acmeChallenges: boolean
  readonly canonicalHost: string
  /** The client's forwarding headers are trusted, whoever the peer is. */
  readonly forwardHeaders: boolean
  /** Extra access log fields; undefined when the service logs no header. */
  readonly headerLog: HeaderLog | undefined
  readonly #targets: TargetProxy[]
  #next = 0

  constructor(service: RouteService, targets: TargetProxy[]) {
    this.name = service.name
    this.hosts = service.hosts
    this.pathPrefixes = service.pathPrefixes
    this.stripPathPrefix = service.stripPathPrefix
    this.scopeCookiePaths = service.scopeCookiePaths
    this.targetTimeoutMs = service.targetTimeoutMs
    this.tlsRedirect = service.tlsRedirect
    this.acmeChallenges = service.acmeChallenges
    this.canonicalHost = urlHost(service.canonicalHost)
    this.forwardHeaders = service.forwardHeaders
    this.headerLog = HeaderLog.for(service.logRequestHeaders, service.logResponseHeaders)
    this.#targets = targets
  }

  get targets(): readonly TargetProxy[] {
    return this.#targets
  }

  /** Round-robin; the primary only lists healthy targets. */
  pick(): TargetProxy {
    const target = this.#targets[this.#next]
    this.#next = (this.#next + 1) % this.#targets.length
    return target
  }
}

export class WorkerRoutes {
  version = 0
  /** Key thumbprint of the ACME account: the answer to a challenge is `token.thumbprint`. */
  acmeThumbprint = ''
  #router = new Router<ServiceRoute>([])
  #services: ServiceRoute[] = []
  readonly #targets = new Map<string, TargetProxy>()
  readonly #events: TargetProxyEvents
  readonly #settings: UpstreamSettings

  constructor(events: TargetProxyEvents, settings: UpstreamSettings) {
    this.#events = events
    this.#settings = settings
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
    const services = table.services.map((service) => {
      const targets = service.targets.map((address) => {
        live.add(address)
        let target = this.#targets.get(address)
        if (!target) {
          target = new TargetProxy(address, this.#events, this.#settings)
          this.#targets.set(address, target)
        } else if (target.retired) {
          target.revive()
        }
        return target
      })
      return new ServiceRoute(service, targets)
    })
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
