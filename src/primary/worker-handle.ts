/**
 * One forked worker as the supervisor tracks it: the slot it fills, its state, and the moments
 * of its life (ready, stopped accepting, exited) as promises.
 */
import type { Worker } from 'node:cluster'
import type { InflightCounts } from '../ipc/messages'

export type WorkerState = 'starting' | 'serving' | 'stopping'

export class WorkerHandle {
  readonly worker: Worker
  /** Whose sockets it listens on: 0 .. workers-1. */
  readonly slot: number
  state: WorkerState = 'starting'
  /** Why it could not start, as the worker said before exiting. */
  failure?: string
  inflight: InflightCounts = {}
  /** Resolves once it listens; rejects if it exits first or takes longer than the ready timeout. */
  readonly ready: Promise<void>
  /** After `shutdown`: resolves once it has closed its listeners (or exited). */
  readonly stoppedAccepting: Promise<void>
  readonly exited: Promise<void>
  #markReady!: () => void
  #failReady!: (err: Error) => void
  #markStoppedAccepting!: () => void

  constructor(worker: Worker, slot: number, readyTimeoutMs: number) {
    this.worker = worker
    this.slot = slot
    this.ready = new Promise<void>((resolve, reject) => { this.#markReady = resolve; this.#failReady = reject })
    // Callers that do not await readiness must not see an unhandled rejection.
    this.ready.catch(() => {})
    this.stoppedAccepting = new Promise<void>((resolve) => { this.#markStoppedAccepting = resolve })
    this.exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))

    const readyTimer = setTimeout(() => {
      this.#failReady(new Error(`worker ${worker.id} did not start listening within ${readyTimeoutMs} ms`))
      worker.process.kill('SIGKILL')
    }, readyTimeoutMs)
    this.ready.then(() => clearTimeout(readyTimer), () => clearTimeout(readyTimer))
    worker.once('exit', (code, signal) => {
      clearTimeout(readyTimer)
      this.#markStoppedAccepting()
      this.#failReady(new Error(this.failure ?? `worker ${worker.id} exited before it was ready (code ${code}, signal ${signal})`))
    })
  }

  get id(): number {
    return this.worker.id
  }

  get pid(): number {
    return this.worker.process.pid ?? 0
  }

  markReady(): void {
    if (this.state === 'starting') this.state = 'serving'
    this.#markReady()
  }

  markStoppedAccepting(): void {
    this.#markStoppedAccepting()
  }
}
