/**
 * Forks and supervises the workers: sends them route tables and waits for their acks, sums
 * their in-flight counts, replaces crashed or stuck workers (with backoff, and gives up on a
 * crash loop), rolls them one at a time on reload, and stops them on shutdown.
 */
import cluster, { type Worker } from 'node:cluster'
import path from 'node:path'
import { log } from '../lib/logger'
import { WorkerCrashLoopError } from '../errors'
import { assertNever, isWorkerMessage, type InflightCounts, type PrimaryMessage, type RouteTable, type WorkerMessage } from '../ipc/messages'

/** A worker that has not applied a table within this time is replaced. */
const ACK_TIMEOUT_MS = 5_000
/** A new worker must listen within this time. */
const READY_TIMEOUT_MS = 15_000
const RESPAWN_MIN_DELAY_MS = 100
const RESPAWN_MAX_DELAY_MS = 5_000
/** More unexpected exits than this within the window is a crash loop: the primary gives up. */
const CRASH_LOOP_LIMIT = 5
const CRASH_LOOP_WINDOW_MS = 30_000
/** What a shutdown waits beyond the workers' own drain deadline before killing them. */
const SHUTDOWN_GRACE_MS = 2_000

export interface SupervisorOptions {
  workers: number
  /** Passed to each worker in its environment. */
  workerConfig: Record<string, unknown>
  debug: boolean
  /** Every worker crashed too often: the process should exit with this error. */
  onCrashLoop(err: WorkerCrashLoopError): void
}

type WorkerState = 'starting' | 'serving' | 'stopping'

interface WorkerHandle {
  worker: Worker
  state: WorkerState
  /** Why it could not start, as the worker said before exiting. */
  failure?: string
  inflight: InflightCounts
  ready: Promise<void>
  markReady(): void
  exited: Promise<void>
}

export class Supervisor {
  #table: RouteTable = { version: 0, services: [], certificates: [], acmeThumbprint: '', acmeTlsChallenges: [] }
  #seq = 0
  #handles = new Map<number, WorkerHandle>()
  #pendingAcks = new Map<number, { workerId: number; resolve(): void }>()
  #countListeners = new Set<() => void>()
  #crashTimes: number[] = []
  #respawnDelayMs = RESPAWN_MIN_DELAY_MS
  #stopping = false
  #httpPort = 0
  #httpsPort = 0
  #httpsError: string | undefined
  #reloading: Promise<void> = Promise.resolve()
  readonly #options: SupervisorOptions

  constructor(options: SupervisorOptions) {
    this.#options = options
    cluster.setupPrimary({ exec: path.join(__dirname, '..', 'worker', 'main.js'), silent: false })
  }

  get httpPort(): number {
    return this.#httpPort
  }

  get httpsPort(): number {
    return this.#httpsPort
  }

  get httpsError(): string | undefined {
    return this.#httpsError
  }

  get workerPids(): number[] {
    return [...this.#handles.values()].filter((h) => h.state !== 'stopping').map((h) => h.worker.process.pid ?? 0)
  }

  /** Forks the workers with the given table and resolves once all of them listen. */
  async start(table: RouteTable): Promise<void> {
    this.#table = table
    const handles = Array.from({ length: this.#options.workers }, () => this.#fork())
    await Promise.all(handles.map((h) => h.ready))
  }

  /** Sends a new table to every worker and resolves when each live worker has applied it. */
  async publish(table: RouteTable): Promise<void> {
    this.#table = table
    const acks = [...this.#handles.values()]
      .filter((h) => h.state !== 'stopping')
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
    await Promise.all([...this.#handles.values()].map((h) => this.#stopWorker(h, timeoutMs)))
  }

  // Private

  async #rollWorkers(drainTimeoutMs: number): Promise<void> {
    const old = [...this.#handles.values()].filter((h) => h.state === 'serving')
    for (const handle of old) {
      const fresh = this.#fork()
      await fresh.ready
      await this.#stopWorker(handle, drainTimeoutMs)
    }
    log('info', 'workers reloaded', { workers: this.workerPids.length })
  }

  #fork(): WorkerHandle {
    const worker = cluster.fork({
      MPROXY_WORKER_CONFIG: JSON.stringify(this.#options.workerConfig),
      MPROXY_DEBUG: this.#options.debug ? '1' : '0',
    })
    let markReady!: () => void
    let failReady!: (err: Error) => void
    const ready = new Promise<void>((resolve, reject) => { markReady = resolve; failReady = reject })
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
    const handle: WorkerHandle = { worker, state: 'starting', inflight: {}, ready, markReady, exited }
    this.#handles.set(worker.id, handle)
    const readyTimer = setTimeout(() => {
      failReady(new Error(`worker ${worker.id} did not start listening within ${READY_TIMEOUT_MS} ms`))
      worker.process.kill('SIGKILL')
    }, READY_TIMEOUT_MS)
    ready.then(() => clearTimeout(readyTimer), () => clearTimeout(readyTimer))

    worker.on('message', (message: unknown) => {
      if (isWorkerMessage(message)) this.#onMessage(handle, message)
    })
    worker.on('online', () => void this.#sendRoutes(handle))
    worker.on('error', (err) => log('warn', 'worker ipc error', { worker: worker.id, error: err.message }))
    worker.once('exit', (code, signal) => {
      clearTimeout(readyTimer)
      failReady(new Error(handle.failure ?? `worker ${worker.id} exited before it was ready (code ${code}, signal ${signal})`))
      this.#onExit(handle, code, signal)
    })
    // Callers that do not await readiness must not see an unhandled rejection.
    ready.catch(() => {})
    log('info', 'worker started', { worker: worker.id, pid: worker.process.pid })
    return handle
  }

  #onMessage(handle: WorkerHandle, message: WorkerMessage): void {
    switch (message.type) {
      case 'ready':
        this.#httpPort = message.httpPort
        this.#httpsPort = message.httpsPort
        this.#httpsError = message.httpsError
        if (handle.state === 'starting') handle.state = 'serving'
        this.#respawnDelayMs = RESPAWN_MIN_DELAY_MS
        handle.markReady()
        return
      case 'listen-failed':
        handle.failure = message.error
        return
      case 'routes-applied': {
        handle.inflight = message.inflight
        const pending = this.#pendingAcks.get(message.ack)
        if (pending?.workerId === handle.worker.id) {
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
    const table = this.#table
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        if (!this.#pendingAcks.delete(seq)) return
        log('warn', 'worker did not apply routes in time, replacing it', { worker: handle.worker.id, version: table.version })
        handle.worker.process.kill('SIGKILL')
        resolve()
      }, ACK_TIMEOUT_MS)
      this.#pendingAcks.set(seq, { workerId: handle.worker.id, resolve: () => { clearTimeout(timer); resolve() } })
      this.#send(handle, { mproxy: 1, type: 'routes', seq, table })
    })
  }

  #onExit(handle: WorkerHandle, code: number | null, signal: string | null): void {
    this.#handles.delete(handle.worker.id)
    // A dead worker applies no table and holds no requests any more.
    for (const [seq, pending] of this.#pendingAcks) {
      if (pending.workerId === handle.worker.id) {
        this.#pendingAcks.delete(seq)
        pending.resolve()
      }
    }
    this.#notifyCounts()
    if (handle.state === 'stopping' || this.#stopping) return

    log('error', 'worker exited unexpectedly', { worker: handle.worker.id, pid: handle.worker.process.pid, code, signal })
    const now = Date.now()
    this.#crashTimes = this.#crashTimes.filter((t) => now - t < CRASH_LOOP_WINDOW_MS)
    this.#crashTimes.push(now)
    if (this.#crashTimes.length > CRASH_LOOP_LIMIT) {
      this.#stopping = true
      this.#options.onCrashLoop(new WorkerCrashLoopError(
        `workers crashed ${this.#crashTimes.length} times within ${CRASH_LOOP_WINDOW_MS / 1000}s; giving up`))
      return
    }
    const delay = this.#respawnDelayMs
    this.#respawnDelayMs = Math.min(this.#respawnDelayMs * 2, RESPAWN_MAX_DELAY_MS)
    setTimeout(() => {
      if (this.#stopping) return
      const fresh = this.#fork()
      fresh.ready.then(() => log('info', 'worker restarted', { worker: fresh.worker.id, pid: fresh.worker.process.pid }), () => {})
    }, delay)
  }

  async #stopWorker(handle: WorkerHandle, timeoutMs: number): Promise<void> {
    handle.state = 'stopping'
    this.#send(handle, { mproxy: 1, type: 'shutdown', timeoutMs })
    const timer = setTimeout(() => handle.worker.process.kill('SIGKILL'), timeoutMs + SHUTDOWN_GRACE_MS)
    await handle.exited
    clearTimeout(timer)
  }

  #send(handle: WorkerHandle, message: PrimaryMessage): void {
    if (handle.worker.isConnected()) handle.worker.send(message)
  }

  #broadcast(message: PrimaryMessage): void {
    for (const handle of this.#handles.values()) this.#send(handle, message)
  }

  #notifyCounts(): void {
    for (const listener of this.#countListeners) listener()
  }
}
