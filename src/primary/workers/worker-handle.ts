/**
 * One forked worker as the supervisor tracks it: its lifecycle as a state machine, the timers
 * that bound it (ready, route acks, stop), and what the worker reports over IPC.
 *
 *   starting → serving             when it reports `ready`
 *   starting | serving → stopping  on `stop()`
 *   any → exited                   when its process exits (done, crashed, or killed when a timer ran out)
 *
 * The handle decides nothing beyond its own worker: what concerns the others (its slot's
 * sockets, the summed counts, whether to replace it) goes up to the supervisor as WorkerEvents.
 */
import { timerDelay } from '../../lib/duration'
import { log } from '../../lib/logger'
import {
  assertNever, isListenHandle, isWorkerMessage, sendable,
  type HeldCounts, type InflightCounts, type ListenHandle, type ListenProtocol, type MetricJson, type PrimaryMessage, type RouteTable, type WorkerMessage,
} from '../../ipc/messages'
import type { ListenResult } from './listen-sockets'
import { tableFor } from './table-delivery'
import { WorkerMetricsRequests } from './worker-metrics-requests'
import { errorLine, forwardStderr, type ClusterWorker } from './worker-processes'

export type WorkerState = 'starting' | 'serving' | 'stopping' | 'exited'

export interface WorkerTimeouts {
  /** A new worker must listen within this time, or it is killed. */
  readyMs: number
  /** A worker that has not applied a table within this time is killed (and replaced, as a crash). */
  ackMs: number
  /** What a stop waits beyond the worker's own drain deadline before killing it. */
  stopGraceMs: number
}

export const DEFAULT_WORKER_TIMEOUTS: WorkerTimeouts = { readyMs: 15_000, ackMs: 5_000, stopGraceMs: 2_000 }

/** How a worker ended. `expected`: the supervisor caused it, so it is no crash. */
export interface WorkerExit {
  code: number | null
  signal: string | null
  expected: boolean
}

/** What a handle tells its supervisor. */
export interface WorkerEvents {
  /** The worker can take messages: send it its slot's sockets, then a table. */
  onOnline(handle: WorkerHandle): void
  /** It bound a new socket for its slot, to keep for the slot's next workers. */
  onSocketBound(handle: WorkerHandle, protocol: ListenProtocol, socket: ListenHandle): void
  onReady(handle: WorkerHandle, result: ListenResult): void
  onAcceptError(handle: WorkerHandle, error: string): void
  /** Its in-flight counts changed (or, once it exited, no longer count). */
  onCounts(): void
  /**
   * Its metrics as they end: the final counters it sent while stopping, or, if it exited without
   * them (a crash), the last ones it answered with. Called once at most.
   */
  onFinalMetrics(handle: WorkerHandle, metrics: MetricJson[]): void
  onExit(handle: WorkerHandle, exit: WorkerExit): void
}

export interface WorkerHandleOptions {
  /** Whose sockets it listens on: 0 .. workers-1. */
  slot: number
  /** Forked by a reload: if it cannot start the reload fails, and its exit is no crash. */
  byReload: boolean
  timeouts: WorkerTimeouts
  events: WorkerEvents
}

export class WorkerHandle {
  readonly slot: number
  /** Resolves once it listens; rejects if it exits first or takes longer than the ready timeout. */
  readonly ready: Promise<void>
  /** After `stop`: resolves once it has closed its listeners (or exited). */
  readonly stoppedAccepting: Promise<void>
  readonly exited: Promise<void>
  readonly #worker: ClusterWorker
  readonly #byReload: boolean
  readonly #timeouts: WorkerTimeouts
  readonly #events: WorkerEvents
  #state: WorkerState = 'starting'
  /** Why it could not start, as the worker said before exiting (or its last error line on stderr). */
  #failure: string | undefined
  #inflight: InflightCounts = {}
  #held: HeldCounts = {}
  /** The certificates it was last sent (see table-delivery.ts). */
  #certificatesKey: string | undefined
  #seq = 0
  /** Tables sent and not yet applied, by seq. */
  readonly #acks = new Map<number, { resolve(): void; timer: NodeJS.Timeout }>()
  readonly #metrics: WorkerMetricsRequests
  #readyTimer: NodeJS.Timeout | undefined
  #stopTimer: NodeJS.Timeout | undefined
  #markReady!: () => void
  #failReady!: (err: Error) => void
  #markStoppedAccepting!: () => void
  #markExited!: () => void

  constructor(worker: ClusterWorker, options: WorkerHandleOptions) {
    this.#worker = worker
    this.slot = options.slot
    this.#byReload = options.byReload
    this.#timeouts = options.timeouts
    this.#events = options.events
    this.ready = new Promise<void>((resolve, reject) => { this.#markReady = resolve; this.#failReady = reject })
    // Callers that do not await readiness must not see an unhandled rejection.
    this.ready.catch(() => {})
    this.stoppedAccepting = new Promise<void>((resolve) => { this.#markStoppedAccepting = resolve })
    this.exited = new Promise<void>((resolve) => { this.#markExited = resolve })
    this.#metrics = new WorkerMetricsRequests(
      (seq) => this.send({ mproxy: 1, type: 'collect-metrics', seq }),
      (metrics) => this.#events.onFinalMetrics(this, metrics),
    )

    worker.on('online', () => this.#events.onOnline(this))
    worker.on('message', (message: unknown, socket: unknown) => {
      if (isWorkerMessage(message)) this.#onMessage(message, socket)
    })
    worker.on('error', (err) => log('warn', 'worker ipc error', { worker: this.id, error: err.message }))
    worker.once('exit', (code, signal) => this.#onExit(code, signal))
    // A worker that dies at start (a broken build) is explained by its own error line.
    forwardStderr(worker, (text) => { if (this.#state === 'starting') this.#failure ??= errorLine(text) })
    this.#readyTimer = setTimeout(() => this.#readyTimedOut(), this.#timeouts.readyMs)
  }

  get id(): number {
    return this.#worker.id
  }

  get pid(): number {
    return this.#worker.process.pid ?? 0
  }

  get state(): WorkerState {
    return this.#state
  }

  /** In flight per target address, as it last reported. */
  get inflight(): InflightCounts {
    return this.#inflight
  }

  /** Requests held per paused service, as it last reported. */
  get held(): HeldCounts {
    return this.#held
  }

  /** Sends a message while the worker can take one; `socket` travels with it and stays open here. */
  send(message: PrimaryMessage, socket?: ListenHandle): void {
    if (!this.#worker.isConnected()) return
    if (socket) this.#worker.send(message, sendable(socket), { keepOpen: true })
    else this.#worker.send(message)
  }

  /**
   * Sends `table` (without certificates it already holds; `certificatesKey` identifies the
   * table's) and resolves once the worker applied it, or exited, or was killed for not applying
   * it within the ack timeout.
   */
  sendRoutes(table: RouteTable, certificatesKey: string): Promise<void> {
    if (!this.#worker.isConnected()) return Promise.resolve()
    const seq = ++this.#seq
    const sent = tableFor(table, certificatesKey, this.#certificatesKey)
    this.#certificatesKey = certificatesKey
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#ackTimedOut(seq, table.version), this.#timeouts.ackMs)
      this.#acks.set(seq, { resolve, timer })
      this.send({ mproxy: 1, type: 'routes', seq, table: sent })
    })
  }

  /**
   * Asks the worker for its metrics. Resolves with its answer; with its previous answer if it
   * does not answer within `timeoutMs`; with undefined once its final metrics went to
   * `onFinalMetrics` (see `metricsFinal`), as they count there and no longer as its own.
   */
  collectMetrics(timeoutMs: number): Promise<MetricJson[] | undefined> {
    if (this.#state === 'exited' || !this.#worker.isConnected()) return Promise.resolve(undefined)
    return this.#metrics.collect(++this.#seq, timeoutMs)
  }

  /** Its final metrics were handed to `onFinalMetrics`: an answer it gave before no longer counts as its own. */
  get metricsFinal(): boolean {
    return this.#metrics.final
  }

  /**
   * Tells the worker to finish in-flight requests within `timeoutMs` and exit, and kills it if
   * it has not exited a grace period later. Resolves once it exited; stopping twice stops once.
   */
  stop(timeoutMs: number): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'exited') return this.exited
    this.#setState('stopping')
    this.send({ mproxy: 1, type: 'shutdown', timeoutMs })
    this.#stopTimer = setTimeout(() => this.#kill('did not exit after its drain deadline'),
      timerDelay(timeoutMs + this.#timeouts.stopGraceMs))
    return this.exited
  }

  // Private

  /** Every state change goes through here, and the timers bounding a state end with it (an ack's in #settleAck). */
  #setState(next: WorkerState): void {
    const previous = this.#state
    if (previous === next) return
    this.#state = next
    log('info', 'worker state changed', { worker: this.id, pid: this.pid, slot: this.slot, from: previous, to: next })
    // The ready timer bounds 'starting' only; once exited, nothing is left to time.
    if (previous === 'starting') clearTimeout(this.#readyTimer)
    if (next === 'exited') {
      clearTimeout(this.#stopTimer)
      // A dead worker applies no table: whoever waits for its acks waits no longer.
      for (const seq of this.#acks.keys()) this.#settleAck(seq)
      // Nor does it count any more: its last counters are the final ones, unless it sent those.
      this.#metrics.finish()
    }
  }

  #settleAck(seq: number): void {
    const pending = this.#acks.get(seq)
    if (!pending) return
    this.#acks.delete(seq)
    clearTimeout(pending.timer)
    pending.resolve()
  }

  #onMessage(message: WorkerMessage, socket: unknown): void {
    switch (message.type) {
      case 'listening':
        if (isListenHandle(socket)) this.#events.onSocketBound(this, message.protocol, socket)
        else log('error', 'worker reported a new socket without its handle', { worker: this.id, protocol: message.protocol })
        return
      case 'ready':
        if (this.#state === 'starting') this.#setState('serving')
        this.#events.onReady(this, message)
        this.#markReady()
        return
      case 'listen-failed':
        this.#failure = message.error
        return
      case 'accept-error':
        this.#events.onAcceptError(this, message.error)
        return
      case 'stopped-accepting':
        this.#markStoppedAccepting()
        return
      case 'routes-applied':
        this.#setInflight(message.inflight, message.held)
        this.#settleAck(message.ack)
        return
      case 'inflight':
        this.#setInflight(message.inflight, message.held)
        return
      case 'drained':
        this.#setInflight({})
        return
      case 'metrics':
        this.#metrics.answered(message.ack, message.metrics)
        return
      case 'final-metrics':
        this.#metrics.finish(message.metrics)
        return
      default:
        assertNever(message)
    }
  }

  #setInflight(counts: InflightCounts, held: HeldCounts = {}): void {
    this.#inflight = counts
    this.#held = held
    this.#events.onCounts()
  }

  #onExit(code: number | null, signal: string | null): void {
    // Workers it stopped, and new workers of a reload that failed to start, are no crash.
    const expected = this.#state === 'stopping' || (this.#state === 'starting' && this.#byReload)
    this.#setState('exited')
    this.#inflight = {}
    this.#held = {}
    this.#failReady(new Error(this.#failure ?? `worker ${this.id} exited before it was ready (code ${code}, signal ${signal})`))
    this.#markStoppedAccepting()
    this.#markExited()
    this.#events.onExit(this, { code, signal, expected })
  }

  #readyTimedOut(): void {
    this.#failReady(new Error(`worker ${this.id} did not start listening within ${this.#timeouts.readyMs} ms`))
    this.#kill('did not start listening in time')
  }

  #ackTimedOut(seq: number, version: number): void {
    this.#kill('did not apply routes in time, replacing it', { version })
    this.#settleAck(seq)
  }

  #kill(why: string, fields: Record<string, unknown> = {}): void {
    log('warn', `worker ${why}`, { worker: this.id, pid: this.pid, ...fields })
    this.#worker.process.kill('SIGKILL')
  }
}
