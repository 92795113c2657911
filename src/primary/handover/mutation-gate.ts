/**
 * Admits control changes (deploy, remove, reload) and counts those running, so a takeover can
 * stop admitting them, wait until the running ones have finished, and admit them again if it
 * fails. A refused change is refused before it does anything: it never half-applies.
 */
import type { MproxyError } from '../../errors'

export class MutationGate {
  #running = 0
  /** Why changes are refused now; undefined while they are admitted. */
  #refusal: MproxyError | undefined
  #whenIdle: Array<() => void> = []

  /** Runs `work` as a change, or throws the refusal while the gate is closed. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    this.check()
    this.#running++
    try {
      return await work()
    } finally {
      if (--this.#running === 0) for (const resolve of this.#whenIdle.splice(0)) resolve()
    }
  }

  /** Throws the refusal while the gate is closed. */
  check(): void {
    if (this.#refusal) throw this.#refusal
  }

  /** Refuses new changes with `reason`; resolves once the running ones have finished. */
  close(reason: MproxyError): Promise<void> {
    this.#refusal = reason
    if (this.#running === 0) return Promise.resolve()
    return new Promise((resolve) => this.#whenIdle.push(resolve))
  }

  open(): void {
    this.#refusal = undefined
  }
}
