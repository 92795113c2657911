/**
 * Runs the workers as a whole: starts them, publishes route tables to them, sums their
 * in-flight counts, replaces those that exit unexpectedly (as RespawnPolicy says), rolls them
 * one at a time on reload, and stops them on shutdown. Each worker's own lifecycle and timers
 * are its WorkerHandle's; the supervisor acts on what the handles report.
 *
 * Each worker fills a slot, and each slot owns its listening sockets (see ListenSockets): a
 * worker that replaces another (reload, respawn) takes over its slot's sockets, so connections
 * queued on them are accepted by the new worker instead of being reset.
 */
import { log } from '../../lib/logger'
import type { WorkerConfig } from '../../server-options'
import { ReloadFailedError, WorkerCrashLoopError, oneLine } from '../../errors'
import type { ListenProtocol, MetricJson, PrimaryMessage, RouteTable } from '../../ipc/messages'
import { AcceptErrors, type AcceptErrorStatus } from './accept-errors'
import { ListenSockets, type SlotSocket } from './listen-sockets'
import { RespawnPolicy } from './respawn-policy'
import { RetiredCounters } from './retired-counters'
import { certificatesKey } from './table-delivery'
import { DEFAULT_WORKER_TIMEOUTS, WorkerHandle, type WorkerEvents, type WorkerExit } from './worker-handle'
import { workerForker, type ForkWorker } from './worker-processes'

export interface SupervisorOptions {
  workers: number
  /** Port for plain HTTP; 0 lets the first worker pick one, which every other worker then joins. */
  httpPort: number
  /** Port for HTTPS, the same way. If it cannot listen, TLS is off (see `httpsError`). */
  httpsPort: number
  /** Sockets an upgrading primary handed over: the slots' workers listen on them instead of binding. */
  sockets?: SlotSocket[]
  /** Ports the primary being taken over listens on: the workers bind alongside it (SO_REUSEPORT). */
  joining?: ListenProtocol[]
  /** Passed to each worker in its environment. */
  workerConfig: WorkerConfig
  debug: boolean
  /** Every worker crashed too often: the process should exit with this error. */
  onCrashLoop(err: WorkerCrashLoopError): void
  /** Starts one worker. Default: a worker process (see worker-processes.ts); tests pass fakes. */
  fork?: ForkWorker
}

export class Supervisor {
  #table: RouteTable = { version: 0, services: [], certificates: [], acmeThumbprint: '', acmeTlsChallenges: [] }
  #certificatesKey = ''
  readonly #handles = new Map<number, WorkerHandle>()
  /**
   * Workers that came online, and so have their listen orders. A table published before then
   * (a certificate ready while the first workers start) would reach a worker ahead of its orders,
   * and it would listen with none; it gets the latest table once online instead.
   */
  readonly #online = new WeakSet<WorkerHandle>()
  readonly #countListeners = new Set<() => void>()
  readonly #respawn = new RespawnPolicy()
  /** Shutting down, or given up on a crash loop: no worker is replaced any more. */
  #stopping = false
  readonly #sockets: ListenSockets
  readonly #acceptErrors = new AcceptErrors()
  readonly #retiredCounters = new RetiredCounters()
  #reloading: Promise<void> = Promise.resolve()
  readonly #fork: ForkWorker
  readonly #options: SupervisorOptions
  readonly #events: WorkerEvents = {
    onOnline: (handle) => {
      this.#online.add(handle)
      // IPC keeps the order: the sockets arrive before the table that makes the worker listen.
      for (const order of this.#sockets.orders(handle.slot)) handle.send(order.message, order.handle)
      void handle.sendRoutes(this.#table, this.#certificatesKey)
    },
    onSocketBound: (handle, protocol, socket) => this.#sockets.keep(handle.slot, protocol, socket),
    onReady: (handle, result) => {
      this.#sockets.listening(handle.slot, result)
      this.#respawn.started()
    },
    onAcceptError: (handle, error) => this.#acceptErrors.record(handle.id, handle.pid, error),
    onCounts: () => this.#notifyCounts(),
    onFinalMetrics: (_handle, metrics) => this.#retiredCounters.add(metrics),
    onExit: (handle, exit) => this.#onExit(handle, exit),
  }

  constructor(options: SupervisorOptions) {
    this.#options = options
    this.#sockets = new ListenSockets(options)
    this.#fork = options.fork ?? workerForker(options.workerConfig, options.debug)
  }

  get httpPort(): number {
    return this.#sockets.httpPort
  }

  get httpsPort(): number {
    return this.#sockets.httpsPort
  }

  get httpsError(): string | undefined {
    return this.#sockets.httpsError
  }

  /** The slots' listening sockets, to hand to a new primary. */
  get listenSockets(): SlotSocket[] {
    return this.#sockets.all()
  }

  /** Workers that could not accept connections within the last few seconds. */
  get acceptErrors(): AcceptErrorStatus[] {
    return this.#acceptErrors.recent()
  }

  /** Workers starting or serving; not those being stopped. */
  get workerPids(): number[] {
    return [...this.#handles.values()].filter((h) => h.state !== 'stopping').map((h) => h.pid)
  }

  /** Forks the workers with the given table and resolves once all of them listen. */
  async start(table: RouteTable): Promise<void> {
    this.#setTable(table)
    // Slot 0 alone first: with port 0 its sockets pick the port that the other slots then join.
    await this.#spawn(0).ready
    const others = Array.from({ length: this.#options.workers - 1 }, (_, i) => this.#spawn(i + 1))
    await Promise.all(others.map((h) => h.ready))
  }

  /**
   * Sends a new table to every worker and resolves when each has applied it. Workers being
   * stopped get it too: until they exit they still answer requests on open connections.
   */
  async publish(table: RouteTable): Promise<void> {
    this.#setTable(table)
    await Promise.all([...this.#handles.values()].filter((h) => this.#online.has(h)).map((h) => h.sendRoutes(this.#table, this.#certificatesKey)))
  }

  /** In flight for these targets, summed over the workers. */
  inflight(address: string): number {
    let total = 0
    for (const handle of this.#handles.values()) total += handle.inflight[address] ?? 0
    return total
  }

  /**
   * The metrics of every worker (of one that does not answer within `timeoutMs`, its previous
   * answer) and the summed counters of the workers gone, for AggregatorRegistry.aggregate.
   */
  async metrics(timeoutMs: number): Promise<MetricJson[][]> {
    const handles = [...this.#handles.values()]
    const answers = await Promise.all(handles.map((handle) => handle.collectMetrics(timeoutMs)))
    // A worker whose final counters arrived meanwhile counts among the retired, not twice.
    const live = answers.filter((answer, index): answer is MetricJson[] => answer !== undefined && !handles[index].metricsFinal)
    return [this.#retiredCounters.metrics, ...live]
  }

  /** Requests held for a paused service, summed over the workers. */
  held(service: string): number {
    let total = 0
    for (const handle of this.#handles.values()) total += handle.held[service] ?? 0
    return total
  }

  /** Calls `listener` whenever a worker reports new counts; returns the unsubscribe function. */
  onCounts(listener: () => void): () => void {
    this.#countListeners.add(listener)
    return () => this.#countListeners.delete(listener)
  }

  /** Tells every worker to cut what is still in flight on these targets (of `service` only, if given). */
  cut(addresses: string[], service?: string): void {
    this.#broadcast({ mproxy: 1, type: 'cut', targets: addresses, ...(service !== undefined && { service }) })
  }

  /** Replaces every worker with a fresh one, one at a time: the new one serves before the old one stops. */
  reload(drainTimeoutMs: number): Promise<void> {
    // Reloads queue up: a second one must not stop the workers the first has just started.
    const run = this.#reloading.then(() => this.#rollWorkers(drainTimeoutMs))
    this.#reloading = run.catch(() => {})
    return run
  }

  /** Stops every worker: they finish in-flight requests within `timeoutMs`, then exit. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.#stopping = true
    const handles = [...this.#handles.values()]
    const stopped = Promise.all(handles.map((h) => h.stop(timeoutMs)))
    // The primary's copies of the sockets go last. Closing them once no worker listens closes the
    // sockets, so new connections are refused rather than queued with nobody left to accept them.
    await Promise.all(handles.map((h) => h.stoppedAccepting))
    this.#sockets.closeAll()
    await stopped
  }

  // Private

  async #rollWorkers(drainTimeoutMs: number): Promise<void> {
    const old = [...this.#handles.values()].filter((h) => h.state === 'serving')
    for (const [replaced, handle] of old.entries()) {
      // The new worker listens on the slot's sockets before the old one closes its copies: the
      // sockets never close, and whatever is queued on them is accepted by one or the other.
      const fresh = this.#spawn(handle.slot, true)
      try {
        await fresh.ready
      } catch (err) {
        // A build that cannot start stops the reload here: every old worker still serves.
        log('error', 'reload stopped: a new worker could not start', { worker: fresh.id, error: oneLine(err), replaced })
        throw new ReloadFailedError(`reload stopped: a new worker could not start: ${oneLine(err)}` +
          ` (${replaced} of ${old.length} workers replaced, the others keep serving)`)
      }
      await handle.stop(drainTimeoutMs)
    }
    log('info', 'workers reloaded', { workers: this.workerPids.length })
  }

  #spawn(slot: number, byReload = false): WorkerHandle {
    const handle = new WorkerHandle(this.#fork(), { slot, byReload, timeouts: DEFAULT_WORKER_TIMEOUTS, events: this.#events })
    this.#handles.set(handle.id, handle)
    log('info', 'worker started', { worker: handle.id, pid: handle.pid, slot })
    return handle
  }

  #onExit(handle: WorkerHandle, exit: WorkerExit): void {
    this.#handles.delete(handle.id)
    // A dead worker holds no requests any more.
    this.#notifyCounts()
    if (exit.expected || this.#stopping) return

    log('error', 'worker exited unexpectedly', { worker: handle.id, pid: handle.pid, slot: handle.slot, code: exit.code, signal: exit.signal })
    const decision = this.#respawn.crashed()
    if (decision.action === 'give-up') {
      this.#stopping = true
      this.#options.onCrashLoop(new WorkerCrashLoopError(decision.reason))
      return
    }
    // Meanwhile the slot's sockets stay open in the primary: connections queue for the new worker.
    setTimeout(() => {
      // A reload may have filled the slot meanwhile.
      if (this.#stopping || this.#slotServed(handle.slot)) return
      const fresh = this.#spawn(handle.slot)
      fresh.ready.then(() => log('info', 'worker restarted', { worker: fresh.id, pid: fresh.pid, slot: fresh.slot }), () => {})
    }, decision.delayMs)
  }

  #setTable(table: RouteTable): void {
    this.#table = table
    this.#certificatesKey = certificatesKey(table)
  }

  #slotServed(slot: number): boolean {
    return [...this.#handles.values()].some((h) => h.slot === slot && h.state !== 'stopping')
  }

  #broadcast(message: PrimaryMessage): void {
    for (const handle of this.#handles.values()) handle.send(message)
  }

  #notifyCounts(): void {
    for (const listener of this.#countListeners) listener()
  }
}
