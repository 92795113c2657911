/**
 * Reports in-flight counts (and the requests paused services hold) to the primary: coalesced
 * while traffic flows, at once when a retired target empties, because a deploy is waiting for
 * exactly that.
 */
import type { HeldCounts, InflightCounts } from '../ipc/messages'
import type { TargetProxy } from './target-proxy'

const REPORT_INTERVAL_MS = 100

export class InflightReporter {
  readonly #send: (counts: InflightCounts, held: HeldCounts) => void
  readonly #targets: () => Iterable<TargetProxy>
  readonly #held: () => HeldCounts
  #timer: NodeJS.Timeout | undefined
  #immediate: NodeJS.Immediate | undefined

  constructor(targets: () => Iterable<TargetProxy>, held: () => HeldCounts, send: (counts: InflightCounts, held: HeldCounts) => void) {
    this.#targets = targets
    this.#held = held
    this.#send = send
  }

  /** Called on every count change; cheap: at most one timer pending. */
  changed(target: TargetProxy): void {
    if (target.retired && target.inflight === 0) {
      this.#immediate ??= setImmediate(() => this.flush())
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), REPORT_INTERVAL_MS)
    }
  }

  /** The number of held requests changed. */
  heldChanged(): void {
    this.#timer ??= setTimeout(() => this.flush(), REPORT_INTERVAL_MS)
  }

  held(): HeldCounts {
    return this.#held()
  }

  snapshot(): InflightCounts {
    const counts: InflightCounts = {}
    for (const target of this.#targets()) counts[target.address] = (counts[target.address] ?? 0) + target.inflight
    return counts
  }

  flush(): void {
    if (this.#timer) clearTimeout(this.#timer)
    if (this.#immediate) clearImmediate(this.#immediate)
    this.#timer = undefined
    this.#immediate = undefined
    this.#send(this.snapshot(), this.#held())
  }
}
