/**
 * Test helpers: a stand-in for a node:cluster Worker, for in-process tests of WorkerHandle and
 * Supervisor. It records what the primary sends and kills, and the test plays the worker's part
 * (`online`, `reply`, `exit`). Real worker processes are covered by the integration tests.
 */
import { EventEmitter } from 'node:events'
import type { PrimaryMessage, WorkerMessage } from '../../src/ipc/messages'
import type { ClusterWorker } from '../../src/primary/workers/worker-processes'

let nextId = 1

export class FakeWorker extends EventEmitter {
  readonly id = nextId++
  /** What the primary sent, in order. */
  readonly sent: PrimaryMessage[] = []
  /** Signals the primary sent the process; the process does not die of them until `exit`. */
  readonly kills: string[] = []
  readonly process = {
    pid: 10_000 + this.id,
    stderr: null,
    kill: (signal: string): boolean => {
      this.kills.push(signal)
      return true
    },
  }

  #connected = true
  #applied = 0

  /** As the supervisor sees it. */
  get asWorker(): ClusterWorker {
    return this as unknown as ClusterWorker
  }

  isConnected(): boolean {
    return this.#connected
  }

  send(message: PrimaryMessage): boolean {
    this.sent.push(message)
    return true
  }

  /** The messages of one type the primary sent. */
  sentOf<T extends PrimaryMessage['type']>(type: T): Extract<PrimaryMessage, { type: T }>[] {
    return this.sent.filter((m): m is Extract<PrimaryMessage, { type: T }> => m.type === type)
  }

  online(): void {
    this.emit('online')
  }

  reply(message: WorkerMessage, socket?: unknown): void {
    this.emit('message', message, socket)
  }

  /** Applies the tables sent since it last did, acking each as a worker does. */
  applyRoutes(inflight: Record<string, number> = {}): void {
    for (const { seq, table } of this.sentOf('routes').slice(this.#applied)) {
      this.reply({ mproxy: 1, type: 'routes-applied', ack: seq, version: table.version, inflight })
      this.#applied++
    }
  }

  /** Comes online, applies its first table and listens: what a healthy worker does at start. */
  start(): void {
    this.online()
    this.applyRoutes()
    this.ready()
  }

  ready(httpPort = 8080): void {
    this.reply({ mproxy: 1, type: 'ready', version: 1, httpPort, httpsPort: 0 })
  }

  exit(code: number | null = 0, signal: string | null = null): void {
    this.#connected = false
    this.emit('exit', code, signal)
  }
}
