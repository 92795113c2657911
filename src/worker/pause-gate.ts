/**
 * The requests a paused service holds in one worker. They wait here, counted as held (and so in
 * flight), until a route table ends their wait: the service resumed (they are proxied), stopped
 * or left the table (503), or their own max pause passed (504). A gate outlives route tables;
 * holding and releasing allocate nothing (the exchange is a node of the gate's list), and the
 * max pause is checked by the worker's timeout sweep, with no timer per request.
 */
import { log } from '../lib/logger'
import type { ServiceState } from '../options'
import type { Exchange, ExchangeOwner } from './exchange'
import { sendErrorPage, type ErrorPages } from './error-pages'
import { InflightList } from './inflight-list'

/** What a gate needs of its service's route in a new table. */
export interface GatedRoute {
  readonly state: ServiceState
  readonly pages: ErrorPages
  /** Proxies the request to a target of the service (or answers 503 when it has none). */
  dispatch(exchange: Exchange): void
}

export class PauseGate implements ExchangeOwner {
  readonly service: string
  readonly #held = new InflightList<Exchange>()
  readonly #onChange: () => void

  /** `onChange`: the number of requests held changed. */
  constructor(service: string, onChange: () => void) {
    this.service = service
    this.#onChange = onChange
  }

  get size(): number {
    return this.#held.size
  }

  /** Holds the request until the gate is settled, or `maxPauseMs` after it arrived. */
  hold(exchange: Exchange, maxPauseMs: number): void {
    exchange.owner = this
    exchange.heldUntil = exchange.startedAt + maxPauseMs
    this.#held.add(exchange)
    this.#onChange()
  }

  /** The client went away while its request was held. */
  release(exchange: Exchange): void {
    if (this.#held.remove(exchange)) this.#onChange()
  }

  /** Answers 504 to the requests held past their max pause (`now`: performance.now()), logging `why`. */
  expire(now: number, why = 'held requests reached the max pause'): void {
    let expired = 0
    this.#held.forEach((exchange) => {
      if (exchange.heldUntil > now) return
      this.#held.remove(exchange)
      exchange.owner = undefined
      expired++
      sendErrorPage(exchange.res, 504, exchange.pages)
    })
    if (expired === 0) return
    log('warn', why, { service: this.service, requests: expired })
    this.#onChange()
  }

  /**
   * The service's route in a new table (undefined: it was removed). Still paused: the requests
   * wait on. Otherwise each, oldest first, is proxied (running) or answered 503 (stopped, removed).
   */
  settle(route: GatedRoute | undefined): void {
    if (route?.state === 'paused' || this.#held.size === 0) return
    const waiting: Exchange[] = []
    this.#held.forEach((exchange) => {
      this.#held.remove(exchange)
      waiting.push(exchange)
    })
    this.#onChange()
    // The list keeps the newest first.
    for (let i = waiting.length - 1; i >= 0; i--) {
      const exchange = waiting[i]
      exchange.owner = undefined
      if (exchange.res.destroyed) continue
      if (route?.state === 'running') route.dispatch(exchange)
      else sendErrorPage(exchange.res, 503, route?.pages)
    }
  }

  // ExchangeOwner: a held request has not been sent anywhere, so it cannot fail upstream.

  failed(exchange: Exchange): void {
    sendErrorPage(exchange.res, 502, exchange.pages)
  }

  closingClientConnections(): boolean {
    return false
  }
}
