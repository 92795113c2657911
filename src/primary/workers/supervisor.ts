/**
 * Forks and supervises the workers: sends them route tables and waits for their acks, sums
 * their in-flight counts, replaces crashed or stuck workers (with backoff, and gives up on a
 * crash loop), rolls them one at a time on reload, and stops them on shutdown.
 *
 * Each worker fills a slot, and each slot owns its listening sockets (see ListenSockets): a
 * worker that replaces another (reload, respawn) takes over its slot's sockets, so connections
 * queued on them are accepted by the new worker instead of being reset.
 */
import cluster from 'node:cluster'
import { timerDelay } from '../../lib/duration'
import { log } from '../../lib/logger'
import { WORKER_CONFIG_ENV, type WorkerConfig } from '../../server-options'
import { ReloadFailedError, WorkerCrashLoopError, oneLine } from '../../errors'
import type { AcceptErrorStatus } from './accept-errors'
import {
  assertNever, isListenHandle, isWorkerMessage, sendable,
  type ListenHandle, type ListenProtocol, type PrimaryMessage, type RouteTable, type WorkerMessage,
} from '../../ipc/messages'
import { AcceptErrors } from './accept-errors'
import { ListenSockets, type SlotSocket } from './listen-sockets'
import { RespawnPolicy } from './respawn-policy'
import { WorkerHandle, setupWorkerProcesses } from './worker-handle'
import { certificatesKey, tableFor } from './table-delivery'

/** A worker that has not applied a table within this time is replaced. */
const ACK_TIMEOUT_MS = 5_000
/** A new worker must listen within this time. */
const READY_TIMEOUT_MS = 15_000
/** What a shutdown waits beyond the workers' own drain deadline before killing them. */
const SHUTDOWN_GRACE_MS = 2_000

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
}

export class Supervisor {
  #table: RouteTable = { version: 0, services: [], certificates: [], acmeThumbprint: '', acmeTlsChallenges: [] }
  #certificatesKey = ''
  #seq = 0
  #handles = new Map<number, WorkerHandle>()
  #pendingAcks = new Map<number, { workerId: number; resolve(): void }>()
  #countListeners = new Set<() => void>()
  readonly #respawn = new RespawnPolicy()
  #stopping = false
  readonly #sockets: ListenSockets
  readonly #acceptErrors = new AcceptErrors()
  #reloading: Promise<void> = Promise.resolve()
  readonly #options: SupervisorOptions

  constructor(options: SupervisorOptions) {
    this.#options = options
    this.#sockets = new ListenSockets(options)
    setupWorkerProcesses()
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

  get workerPids(): number[] {
    return [...this.#handles.values()].filter((h) => h.state !== 'stopping').map((h) => h.pid)
  }

  /** Forks the workers with the given table and resolves once all of them listen. */
  async start(table: RouteTable): Promise<void> {
    this.#setTable(table)
    // Slot 0 alone first: with port 0 its sockets pick the port that the other slots then join.
    await this.#fork(0).ready
    const others = Array.from({ length: this.#options.workers - 1 }, (_, i) => this.#fork(i + 1))
    await Promise.all(others.map((h) => h.ready))
  }

  /**
   * Sends a new table to every worker and resolves when each has applied it. Workers being
   * stopped get it too: until they exit they still answer requests on open connections.
   */
  async publish(table: RouteTable): Promise<void> {
    this.#setTable(table)
    const acks = [...this.#handles.values()]
      .filter((h) => h.worker.isConnected())
      .map((h) => this.#sendRoutes(h))
    await Promise.all(acks)
  }

  /** In flight for these targets, summed over the workers. */
  inflight(address: string): number {
    let total = 0
    for (const handle of this.#handles.values()) total += handle.inflight[address] ?? 0
    return total
  }

  /** Calls `listener` whenever a worker reports new counts; returns the unsubscribe function. */
  onCounts(listener: () => void): () => void {
    this.#countListeners.add(listener)
    return () => this.#countListeners.delete(listener)
  }

  /** Tells every worker to cut what is still in flight on these targets. */
  cut(addresses: string[]): void {
    this.#broadcast({ mproxy: 1, type: 'cut', targets: addresses })
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
    const stopped = Promise.all(handles.map((h) => this.#stopWorker(h, timeoutMs)))
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
      const fresh = this.#fork(handle.slot)
      fresh.byReload = true
      try {
        await fresh.ready
      } catch (err) {
        // A build that cannot start stops the reload here: every old worker still serves.
        log('error', 'reload stopped: a new worker could not start', { worker: fresh.id, error: oneLine(err), replaced })
        throw new ReloadFailedError(`reload stopped: a new worker could not start: ${oneLine(err)}` +
          ` (${replaced} of ${old.length} workers replaced, the others keep serving)`)
      }
      await this.#stopWorker(handle, drainTimeoutMs)
    }
    log('info', 'workers reloaded', { workers: this.workerPids.length })
  }

  #fork(slot: number): WorkerHandle {
    const worker = cluster.fork({
      [WORKER_CONFIG_ENV]: JSON.stringify(this.#options.workerConfig),
      MPROXY_DEBUG: this.#options.debug ? '1' : '0',
    })
    const handle = new WorkerHandle(worker, slot, READY_TIMEOUT_MS)
    this.#handles.set(handle.id, handle)
    worker.on('message', (message: unknown, socket: unknown) => {
      if (isWorkerMessage(message)) this.#onMessage(handle, message, socket)
    })
    worker.on('online', () => {
      // IPC keeps the order: the sockets arrive before the table that makes the worker listen.
      for (const order of this.#sockets.orders(slot)) this.#send(handle, order.message, order.handle)
      void this.#sendRoutes(handle)
    })
    worker.on('error', (err) => log('warn', 'worker ipc error', { worker: handle.id, error: err.message }))
    worker.once('exit', (code, signal) => this.#onExit(handle, code, signal))
    log('info', 'worker started', { worker: handle.id, pid: handle.pid, slot })
    return handle
  }

  #onMessage(handle: WorkerHandle, message: WorkerMessage, socket: unknown): void {
    switch (message.type) {
      case 'listening':
        if (isListenHandle(socket)) this.#sockets.keep(handle.slot, message.protocol, socket)
        else log('error', 'worker reported a new socket without its handle', { worker: handle.id, protocol: message.protocol })
        return
      case 'ready':
        this.#sockets.listening(handle.slot, message)
        this.#respawn.started()
        handle.markReady()
        return
      case 'listen-failed':
        handle.failure = message.error
        return
      case 'accept-error':
        this.#acceptErrors.record(handle.id, handle.pid, message.error)
        return
      case 'stopped-accepting':
        handle.markStoppedAccepting()
        return
      case 'routes-applied': {
        handle.inflight = message.inflight
        const pending = this.#pendingAcks.get(message.ack)
        if (pending?.workerId === handle.id) {
          this.#pendingAcks.delete(message.ack)
          pending.resolve()
        }
        this.#notifyCounts()
        return
      }
      case 'inflight':
        handle.inflight = message.inflight
        this.#notifyCounts()
        return
      case 'drained':
        handle.inflight = {}
        this.#notifyCounts()
        return
      default:
        assertNever(message)
    }
  }

  #sendRoutes(handle: WorkerHandle): Promise<void> {
    const seq = ++this.#seq
    const table = tableFor(this.#table, this.#certificatesKey, handle.certificatesKey)
    handle.certificatesKey = this.#certificatesKey
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        if (!this.#pendingAcks.delete(seq)) return
        log('warn', 'worker did not apply routes in time, replacing it', { worker: handle.id, version: table.version })
        handle.worker.process.kill('SIGKILL')
        resolve()
      }, ACK_TIMEOUT_MS)
      this.#pendingAcks.set(seq, { workerId: handle.id, resolve: () => { clearTimeout(timer); resolve() } })
      this.#send(handle, { mproxy: 1, type: 'routes', seq, table })
    })
  }

  #setTable(table: RouteTable): void {
    this.#table = table
    this.#certificatesKey = certificatesKey(table)
  }

  #onExit(handle: WorkerHandle, code: number | null, signal: string | null): void {
    this.#handles.delete(handle.id)
    // A dead worker applies no table and holds no requests any more.
    for (const [seq, pending] of this.#pendingAcks) {
      if (pending.workerId === handle.id) {
        this.#pendingAcks.delete(seq)
        pending.resolve()
      }
    }
    this.#notifyCounts()
    // Workers it stopped, and new workers of a reload that failed to start, are no crash.
    if (handle.state === 'stopping' || this.#stopping || (handle.byReload && handle.state === 'starting')) return

    log('error', 'worker exited unexpectedly', { worker: handle.id, pid: handle.pid, slot: handle.slot, code, signal })
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
      const fresh = this.#fork(handle.slot)
      fresh.ready.then(() => log('info', 'worker restarted', { worker: fresh.id, pid: fresh.pid, slot: fresh.slot }), () => {})
    }, decision.delayMs)
  }

  async #stopWorker(handle: WorkerHandle, timeoutMs: number): Promise<void> {
    handle.state = 'stopping'
    this.#send(handle, { mproxy: 1, type: 'shutdown', timeoutMs })
    const timer = setTimeout(() => handle.worker.process.kill('SIGKILL'), timerDelay(timeoutMs + SHUTDOWN_GRACE_MS))
    await handle.exited
    clearTimeout(timer)
  }

  #send(handle: WorkerHandle, message: PrimaryMessage, socket?: ListenHandle): void {
    if (!handle.worker.isConnected()) return
    if (socket) handle.worker.send(message, sendable(socket), { keepOpen: true })
    else handle.worker.send(message)
  }

  #slotServed(slot: number): boolean {
    return [...this.#handles.values()].some((h) => h.slot === slot && h.state !== 'stopping')
  }

  #broadcast(message: PrimaryMessage): void {
    for (const handle of this.#handles.values()) this.#send(handle, message)
  }

  #notifyCounts(): void {
    for (const listener of this.#countListeners) listener()
  }
}

