/**
 * One upstream instance of a service, as the primary sees it: its health, from continuous
 * health checks. Every state change goes through `#setState`, which logs it and tells the owner.
 */
import { log } from '../../lib/logger'
import type { HealthCheckOptions } from '../../options'
import { HealthCheck, type ProbeResult } from './health-check'

/** A target's place in a deploy: checked before it gets traffic, then serving, then draining. */
export type TargetState = 'adding' | 'healthy' | 'unhealthy' | 'draining'

export interface TargetEvents {
  onStateChange(target: Target): void
  onProbe?(target: Target, result: ProbeResult): void
}

export class Target {
  readonly address: string
  #state: TargetState
  #lastResult: ProbeResult | undefined
  #check: HealthCheck
  #healthCheck: HealthCheckOptions
  #events: TargetEvents

  constructor(address: string, healthCheck: HealthCheckOptions, events: TargetEvents, initialState: TargetState = 'adding') {
    this.address = address
    this.#state = initialState
    this.#events = events
    this.#healthCheck = healthCheck
    this.#check = new HealthCheck(address, healthCheck, (result) => this.#onProbe(result))
  }

  get state(): TargetState {
    return this.#state
  }

  get lastResult(): ProbeResult | undefined {
    return this.#lastResult
  }

  /** Swaps who hears about this target (a deploy watches it, then the service owns it). */
  setEvents(events: TargetEvents): void {
    this.#events = events
  }

  beginHealthChecks(): void {
    this.#check.start()
  }

  /** A redeploy changed the service's health check: probe the new way from now on. */
  setHealthCheck(options: HealthCheckOptions): void {
    if (JSON.stringify(options) === JSON.stringify(this.#healthCheck)) return
    const running = this.#check.running
    this.#check.stop()
    this.#healthCheck = options
    this.#check = new HealthCheck(this.address, options, (result) => this.#onProbe(result))
    if (running) this.#check.start()
  }

  /** No longer routed to: checks stop, and what is in flight drains. */
  beginDraining(): void {
    this.#check.stop()
    this.#setState('draining')
  }

  stop(): void {
    this.#check.stop()
  }

  // Private

  #onProbe(result: ProbeResult): void {
    this.#lastResult = result
    this.#events.onProbe?.(this, result)
    if (result.ok) this.#setState('healthy')
    else if (this.#state === 'healthy') this.#setState('unhealthy')
  }

  #setState(state: TargetState): void {
    if (state === this.#state) return
    const from = this.#state
    this.#state = state
    log('info', 'target state changed', {
      target: this.address, from, to: state, probe: this.#lastResult?.detail,
    })
    this.#events.onStateChange(this)
  }
}
