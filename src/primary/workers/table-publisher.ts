/**
 * Sends route tables to the workers one at a time, always the latest: changes made while a
 * table is on its way are coalesced into the next one.
 */
import type { RouteTable } from '../../ipc/messages'

export class TablePublisher {
  readonly #send: (table: RouteTable) => Promise<void>
  readonly #build: () => RouteTable
  #publishing: Promise<void> = Promise.resolve()
  /** A publish waiting for the one in flight: later requests join it. */
  #queued: Promise<void> | undefined

  constructor(send: (table: RouteTable) => Promise<void>, build: () => RouteTable) {
    this.#send = send
    this.#build = build
  }

  /** Resolves once every worker has a table holding every change made before this call. */
  publish(): Promise<void> {
    if (this.#queued) return this.#queued
    const next = this.#publishing.then(() => {
      // Built when its turn comes: it holds every change made while it waited.
      this.#queued = undefined
      return this.#send(this.#build())
    })
    this.#queued = next
    this.#publishing = next.catch(() => {})
    return next
  }
}
