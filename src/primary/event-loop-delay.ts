/**
 * How late the primary's event loop runs, since it started: health checks, the control socket
 * and route tables all wait behind whatever holds the loop, so a long synchronous step here
 * delays every deploy and every worker's view of the routes. `mproxy status` reports it, and
 * `npm run bench:control` reads it after a run of deploys.
 */
import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks'

/**
 * How often the loop is sampled, in ms. Node's default of 10 ms reports a block of B ms as
 * anything from B - 10 to B, too coarse to tell 15 ms from 25 ms. Measured on Node 24 (2-vCPU
 * machine, otherwise idle process): 1 ms costs ~1.6 % of a core, 2 ms ~1 %, 5 ms ~0.5 %,
 * 10 ms ~0.35 %. 2 ms keeps the error under a tenth of the 20 ms we aim for.
 */
export const EVENT_LOOP_DELAY_RESOLUTION_MS = 2

/** Milliseconds the loop ran late, over every sample since start (0.01 ms steps). */
export interface EventLoopDelayStatus {
  p50Ms: number
  p99Ms: number
  maxMs: number
}

export class EventLoopDelay {
  readonly #histogram: ELDHistogram
  readonly #resolutionMs: number

  constructor(resolutionMs = EVENT_LOOP_DELAY_RESOLUTION_MS) {
    this.#resolutionMs = resolutionMs
    this.#histogram = monitorEventLoopDelay({ resolution: resolutionMs })
    this.#histogram.enable()
  }

  status(): EventLoopDelayStatus {
    return {
      p50Ms: this.#lateness(this.#histogram.percentile(50)),
      p99Ms: this.#lateness(this.#histogram.percentile(99)),
      maxMs: this.#lateness(this.#histogram.max),
    }
  }

  // Private

  /**
   * The histogram holds the time between two samples (ns), which is the resolution when the
   * loop is free: what is beyond it is how late the loop was. Before the first sample its
   * percentiles are meaningless.
   */
  #lateness(intervalNs: number): number {
    if (this.#histogram.count === 0) return 0
    const lateMs = intervalNs / 1e6 - this.#resolutionMs
    return Math.max(0, Math.round(lateMs * 100) / 100)
  }
}
