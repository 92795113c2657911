/**
 * One change of one service, made here or through another node of the fleet, always in the
 * same order: plan → health → switch → save → drain. The registry decides what to change and
 * holds the service's lock; a Deployment carries the change out and says how it went. What
 * differs between a change made here and one from the fleet is in its `ChangeRules`.
 */
import { oneLine } from '../../errors'
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'
import type { ServiceSpec, ServiceState } from '../../options'
import type { Progress } from '../fleet/peers'
import type { ServiceCertificates } from '../tls/service-certificates'
import { drainTargets, type DrainResult, type InflightSource } from './drain'
import { NO_ERROR_PAGES, type ErrorPageTemplates } from './error-page-files'
import { waitHealthy } from './health-wait'
import { routedTargets, type Service } from './service'
import type { Target, TargetEvents } from './target'

/** What a deployment needs from the registry that runs it. */
export interface DeploymentHost {
  current(name: string): Service | undefined
  /** Routes the service (added or replaced); `undefined` stops routing to the name. */
  route(name: string, service: Service | undefined): void
  /** Addresses some routed service still sends traffic to. */
  routedAddresses(): Set<string>
  /** Resolves once every worker routes as the registry does now. */
  publish(): Promise<void>
  /** The routed services changed: certificates follow their hosts. */
  servicesChanged(): void
  createTarget(service: Service, address: string): Target
  targetEvents(service: Service): TargetEvents
  readonly workers: InflightSource & { readonly workerPids: number[] }
  readonly certificates: ServiceCertificates
}

export interface ChangeRules {
  progress: Progress
  /** Longest wait for new targets to turn healthy. */
  healthWaitMs: number
  /** Switch without waiting for health checks (`--force`). */
  force: boolean
  /**
   * New targets that stay unhealthy fail a change made here. A change from the fleet switches
   * anyway, with a warning: the node that made it found them healthy, and the fleet serves it.
   */
  onUnhealthy: 'fail' | 'warn'
  /** Last check before the switch (a host another service took while this one waited). */
  beforeSwitch?(): void
  /** Persists the change; resolves to its revision in the shared state (0 without one). */
  save(): Promise<number>
  /**
   * A change made here that cannot be saved is undone: traffic goes back to what it was. A
   * change from the fleet stays (Redis's commit is the decision).
   */
  undoUnsaved: boolean
  /** Waits for the other nodes of the fleet to apply the saved revision. */
  awaitPeers(revision: number): Promise<void>
}

export interface DeploymentResult {
  /** The targets were already live: only options changed, if anything. */
  unchanged: boolean
  durationMs: number
  drained: DrainResult
  /** What needs the operator's eye although the change was made. */
  warnings: string[]
}

export class Deployment {
  readonly #host: DeploymentHost
  readonly #rules: ChangeRules
  readonly #startedAt = Date.now()

  constructor(host: DeploymentHost, rules: ChangeRules) {
    this.#host = host
    this.#rules = rules
  }

  /** Routes the service to `spec`'s targets once the new ones are healthy, then drains the replaced ones. */
  async deploy(spec: ServiceSpec, certificate: Service['certificate'], errorPages: ErrorPageTemplates = NO_ERROR_PAGES): Promise<DeploymentResult> {
    const current = this.#host.current(spec.name)
    const service: Service = { spec, certificate, errorPages, targets: [], readTargets: [], rolloutTargets: [], draining: current?.draining ?? [] }
    const active = this.#plan(service, current?.targets ?? [], spec.targets)
    const readers = this.#plan(service, current?.readTargets ?? [], spec.readTargets)
    const rollout = this.#plan(service, current?.rolloutTargets ?? [], spec.rollout?.targets ?? [])
    const added = [...active.added, ...readers.added, ...rollout.added]
    const warnings = await this.#awaitHealth(service, added, current !== undefined)
    let replaced: Target[]
    try {
      this.#rules.beforeSwitch?.()
      service.targets = [...active.kept, ...active.added]
      service.readTargets = [...readers.kept, ...readers.added]
      service.rolloutTargets = [...rollout.kept, ...rollout.added]
      replaced = await this.#switch(service, current)
    } catch (err) {
      // Nothing switched: the new targets are nobody's, so nothing checks them any more.
      added.forEach((target) => target.stop())
      throw err
    }
    const activeChanged = active.changed || readers.changed
    const unchanged = current !== undefined && !activeChanged && !rollout.changed
    this.#reportSwitch(service, current, activeChanged, rollout.changed)
    const revision = await this.#save(spec.name, current, added)
    this.#retire(service, replaced)
    this.#host.servicesChanged()
    this.#reportCertificates(service)
    const [drained] = await Promise.all([this.#drain(service, replaced), this.#rules.awaitPeers(revision)])
    return { unchanged, durationMs: Date.now() - this.#startedAt, drained, warnings }
  }

  /** Stops routing to the service, then drains its targets. */
  async remove(service: Service): Promise<DeploymentResult> {
    const { name } = service.spec
    this.#host.route(name, undefined)
    await this.#host.publish()
    this.#rules.progress(`stopped routing to ${name}`)
    const revision = await this.#save(name, service, [])
    log('info', 'service removed', { service: name })
    const targets = routedTargets(service)
    this.#retire(service, targets)
    this.#host.servicesChanged()
    const [drained] = await Promise.all([this.#drain(service, targets), this.#rules.awaitPeers(revision)])
    return { unchanged: false, durationMs: Date.now() - this.#startedAt, drained, warnings: [] }
  }

  /**
   * Pause, stop or resume: every worker holds, refuses or proxies new requests from now on, the
   * change is saved, and then (unless resumed) the requests already sent to the service's
   * targets drain, within `drainTimeoutMs`; what is left is cut.
   */
  async changeState(current: Service, spec: ServiceSpec, drainTimeoutMs: number): Promise<DeploymentResult> {
    const { name, state } = spec
    const service: Service = { ...current, spec }
    await this.#switch(service, current)
    log('info', state === 'running' ? 'service resumed' : `service ${state}`, {
      service: name, stopMessage: spec.stopMessage || undefined, maxPauseMs: state === 'paused' ? spec.maxPauseMs : undefined,
    })
    this.#rules.progress(`${name} is ${state} on ${this.#host.workers.workerPids.length} workers: ${STATE_EFFECTS[state](spec)}`)
    const revision = await this.#save(name, current, [])
    const drain = state === 'running' ? Promise.resolve({ durationMs: 0, cut: 0 }) : this.#drainRequests(service, drainTimeoutMs)
    const [drained] = await Promise.all([drain, this.#rules.awaitPeers(revision)])
    return { unchanged: false, durationMs: Date.now() - this.#startedAt, drained, warnings: [] }
  }

  // Private

  /** For one slot: which of its current targets stay, and the new ones to add (not yet checked). */
  #plan(service: Service, current: readonly Target[], addresses: readonly string[]): { kept: Target[]; added: Target[]; changed: boolean } {
    const kept = current.filter((target) => addresses.includes(target.address))
    const added = addresses
      .filter((address) => !kept.some((target) => target.address === address))
      .map((address) => this.#host.createTarget(service, address))
    return { kept, added, changed: added.length > 0 || kept.length !== current.length }
  }

  #reportSwitch({ spec }: Service, current: Service | undefined, activeChanged: boolean, rolloutChanged: boolean): void {
    const { progress } = this.#rules
    const workers = this.#host.workers.workerPids.length
    if (activeChanged || !current) {
      log('info', 'switched', { service: spec.name, targets: spec.targets, readTargets: spec.readTargets.length > 0 ? spec.readTargets : undefined })
      const reads = spec.readTargets.length > 0 ? ` (reads: ${spec.readTargets.join(', ')})` : ''
      progress(`switched ${spec.name} to ${spec.targets.join(', ')}${reads} on ${workers} workers`)
    }
    if (rolloutChanged) {
      const targets = spec.rollout?.targets ?? []
      log('info', 'rollout targets switched', { service: spec.name, targets })
      progress(targets.length > 0 ? `rollout targets of ${spec.name} are now ${targets.join(', ')} on ${workers} workers` : `${spec.name} has no rollout targets any more`)
    }
    if (activeChanged || rolloutChanged || !current) return
    if (JSON.stringify(current.spec) !== JSON.stringify(spec)) progress(`${spec.targets.join(', ')} is already live for ${spec.name}: applied the new options`)
    else progress(`${spec.targets.join(', ')} is already live for ${spec.name}`)
  }

  /** Waits for the added targets to be healthy; returns warnings when the rules let it switch anyway. */
  async #awaitHealth(service: Service, added: Target[], hasPrevious: boolean): Promise<string[]> {
    const { progress, force, healthWaitMs, onUnhealthy } = this.#rules
    if (force && added.length > 0) {
      progress(`--force: switching without waiting for health checks`)
      added.forEach((target) => target.beginHealthChecks())
      return []
    }
    try {
      await waitHealthy(added, service.spec, healthWaitMs, progress, hasPrevious)
      return []
    } catch (err) {
      if (onUnhealthy === 'fail') throw err
      added.forEach((target) => target.beginHealthChecks())
      const failing = added.filter((target) => target.state !== 'healthy')
      const reasons = failing.map((target) => target.lastResult?.detail ?? 'no answer').join('; ')
      return [`switched although ${failing.map((target) => target.address).join(', ')} failed ${failing.length === 1 ? 'its' : 'their'} health checks from there: ${reasons}`]
    }
  }

  /** Routes the service to its targets on every worker; returns the current targets it replaced. */
  async #switch(service: Service, current: Service | undefined): Promise<Target[]> {
    const serving = routedTargets(service)
    for (const target of serving) {
      target.setEvents(this.#host.targetEvents(service))
      target.setHealthCheck(service.spec.healthCheck)
    }
    this.#host.route(service.spec.name, service)
    await this.#host.publish()
    return current ? routedTargets(current).filter((target) => !serving.includes(target)) : []
  }

  /** Saves the change; one made here that cannot be saved routes back to `previous`. */
  async #save(name: string, previous: Service | undefined, added: Target[]): Promise<number> {
    try {
      return await this.#rules.save()
    } catch (err) {
      if (!this.#rules.undoUnsaved) {
        // The change stands (the fleet decided it), so what it replaced is still retired and drained.
        log('error', 'change applied but not saved', { service: name, error: oneLine(err) })
        return 0
      }
      if (previous) routedTargets(previous).forEach((target) => target.setEvents(this.#host.targetEvents(previous)))
      this.#host.route(name, previous)
      added.forEach((target) => target.stop())
      await this.#host.publish()
      log('warn', 'change not saved: switched back', { service: name, error: oneLine(err) })
      this.#rules.progress(previous
        ? `the change could not be saved: ${name} is back on ${previous.spec.targets.join(', ')}`
        : `the change could not be saved: ${name} is not routed`)
      throw err
    }
  }

  /** Replaced targets get no more traffic: they drain, and are listed as draining meanwhile. */
  #retire(service: Service, replaced: Target[]): void {
    for (const target of replaced) target.beginDraining()
    service.draining = [...service.draining, ...replaced]
  }

  async #drain(service: Service, targets: Target[]): Promise<DrainResult> {
    if (targets.length === 0) return { durationMs: 0, cut: 0 }
    const { progress } = this.#rules
    // A target still in use by another route (or redeployed meanwhile) is not drained.
    const routed = this.#host.routedAddresses()
    const draining = targets.map((target) => target.address).filter((address) => !routed.has(address))
    const result = await drainTargets(this.#host.workers, draining, service.spec.drainTimeoutMs, progress)
    service.draining = service.draining.filter((target) => !targets.includes(target))
    targets.forEach((target) => target.stop())
    log('info', 'drained', { service: service.spec.name, targets: draining, durationMs: result.durationMs, cut: result.cut })
    if (draining.length > 0) progress(`drained ${draining.join(', ')} after ${formatDuration(result.durationMs)}${cutNote(result)}`)
    return result
  }

  /** Waits for the requests a paused or stopped service had already sent to its targets. */
  async #drainRequests(service: Service, timeoutMs: number): Promise<DrainResult> {
    const { name } = service.spec
    const addresses = routedTargets(service).map((target) => target.address)
    const result = await drainTargets(this.#host.workers, addresses, timeoutMs, this.#rules.progress, name)
    log('info', 'service drained', { service: name, durationMs: result.durationMs, cut: result.cut })
    this.#rules.progress(`drained ${name} after ${formatDuration(result.durationMs)}${cutNote(result)}`)
    return result
  }

  #reportCertificates({ spec, certificate }: Service): void {
    for (const status of this.#host.certificates.status(spec, certificate)) {
      this.#rules.progress(status.state === 'valid'
        ? `certificate for ${status.host} valid until ${status.notAfter?.slice(0, 10)}`
        : `certificate for ${status.host} is being ordered in the background (see mproxy list)`)
    }
  }
}

/** ` (N cut at the drain timeout)` when requests had to be cut. */
export function cutNote(result: DrainResult): string {
  return result.cut > 0 ? ` (${result.cut} cut at the drain timeout)` : ''
}

/** What the workers do with new requests in each state, for the progress line. */
const STATE_EFFECTS: Record<ServiceState, (spec: ServiceSpec) => string> = {
  running: () => 'new requests are proxied, and those held are released',
  paused: (spec) => `new requests are held for up to ${formatDuration(spec.maxPauseMs)}`,
  stopped: (spec) => `new requests get the 503 page${spec.stopMessage ? ` (${JSON.stringify(spec.stopMessage)})` : ''}`,
}
