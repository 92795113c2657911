/**
 * The metrics requests to one worker: answers matched to requests by seq, the last answer for a
 * scrape the worker is too busy to answer in time, and the end of its counting (its final
 * counters while it stops, or its last answer when it dies), which is reported once.
 */
import type { MetricJson } from '../../ipc/messages'

export class WorkerMetricsRequests {
  readonly #ask: (seq: number) => void
  readonly #onFinal: (metrics: MetricJson[]) => void
  /** Asked for and not yet answered, by seq. */
  readonly #pending = new Map<number, (metrics: MetricJson[] | undefined) => void>()
  #last: MetricJson[] | undefined
  #final = false

  constructor(ask: (seq: number) => void, onFinal: (metrics: MetricJson[]) => void) {
    this.#ask = ask
    this.#onFinal = onFinal
  }

  /** The worker's final metrics went to `onFinal`: none of its answers count as its own any more. */
  get final(): boolean {
    return this.#final
  }

  /** Its answer; its previous one if it does not answer within `timeoutMs`; undefined once final. */
  collect(seq: number, timeoutMs: number): Promise<MetricJson[] | undefined> {
    if (this.#final) return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq)
        resolve(this.#last)
      }, timeoutMs)
      this.#pending.set(seq, (metrics) => {
        clearTimeout(timer)
        resolve(metrics)
      })
      this.#ask(seq)
    })
  }

  answered(ack: number, metrics: MetricJson[]): void {
    if (this.#final) return
    this.#last = metrics
    this.#pending.get(ack)?.(metrics)
    this.#pending.delete(ack)
  }

  /** The worker stops counting: `metrics` are its final counters (default: its last answer, if any). */
  finish(metrics: MetricJson[] | undefined = this.#last): void {
    if (this.#final) return
    this.#final = true
    this.#last = undefined
    for (const answer of this.#pending.values()) answer(undefined)
    this.#pending.clear()
    if (metrics) this.#onFinal(metrics)
  }
}
