/**
 * A takeover: a new primary replaces the running one on the same state dir without a gap. Both
 * sides of the protocol over the control socket live here:
 *
 *   new (Takeover)                               old (Handover)
 *   prepare ─────────────────────────────────►  refuse changes, wait for running ones, save state
 *           ◄──────────── prepared: pid, version, ports (the answer stays open: the lease)
 *   load state, start workers on the same ports
 *   (bound alongside, or on the sockets handed over by `mproxy upgrade`), all listening
 *   commit ──────────────────────────────────►  committed: stop as on SIGTERM
 *   rename own control socket over the path,
 *   tell systemd the new main pid, close the lease ──►  close the control server (its path is
 *                                                       the new primary's now), drain, exit 0
 *
 * Until the commit, the old primary resumes if the lease closes (the new one failed or died) or
 * the deadline passes, and nothing was lost: it refused changes, and its workers kept serving.
 * If the old primary dies meanwhile, the new one carries on as a normal start.
 */
import fs from 'node:fs/promises'
import net from 'node:net'
import { ControlClient, type TakeoverLease } from '../../control/client'
import type { CommitRequest, CommitResponse, PrepareRequest, PrepareResponse } from '../../control/protocol'
import {
  AlreadyRunningError, HandingOverError, ProxyNotRunningError, ShuttingDownError, TakeoverFailedError, oneLine,
} from '../../errors'
import { assertNever, type ListenProtocol } from '../../ipc/messages'
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'
import { notifySystemd } from '../../lib/systemd-notify'
import type { MutationGate } from './mutation-gate'

/** How long a prepared primary waits for the commit: the new one loads state and starts its workers meanwhile. */
export const HANDOVER_TIMEOUT_MS = 60_000
/** After the commit, how long the old primary waits for the new one to own the control socket. */
const RELEASE_TIMEOUT_MS = 5_000

export type HandoverState = 'serving' | 'preparing' | 'prepared' | 'committed'

/** What the old primary's handover needs from it. */
export interface HandoverParts {
  gate: MutationGate
  /** Writes the state as it is now, after the writes already queued. */
  saveState(): Promise<void>
  /** The answer to `prepare`: this process and the ports it listens on. */
  describe(): PrepareResponse
  readonly stopping: boolean
}

/** The running primary's side: hands over to one new primary, once. */
export class Handover {
  /** Resolves with the new primary's pid at the commit; the old primary then stops. */
  readonly committed: Promise<number>
  #state: HandoverState = 'serving'
  #successor = 0
  #commit!: (pid: number) => void
  /** Resolves when the new primary closes the lease, the `prepare` connection. */
  #leaseEnded: Promise<void> = Promise.resolve()
  /** After the commit: resolves once the new primary has let go of the lease (it owns the socket path then). */
  #released: Promise<void> = Promise.resolve()
  readonly #parts: HandoverParts

  constructor(parts: HandoverParts) {
    this.#parts = parts
    this.committed = new Promise((resolve) => { this.#commit = resolve })
  }

  get state(): HandoverState {
    return this.#state
  }

  /** Resolves once the new primary owns the control socket path, or RELEASE_TIMEOUT_MS after the commit. */
  get released(): Promise<void> {
    return this.#released
  }

  /** `prepare`: answered through `prepared`; the returned promise settles when the takeover ends. */
  async prepare(request: PrepareRequest, prepared: (answer: PrepareResponse) => void, dropped: AbortSignal): Promise<string> {
    if (this.#parts.stopping) throw new ShuttingDownError('mproxy is shutting down')
    if (this.#state !== 'serving') throw new HandingOverError(`mproxy is already handing over to pid ${this.#successor}`)
    this.#successor = request.pid
    this.#setState('preparing', { version: request.version })
    try {
      await this.#parts.gate.close(new HandingOverError(`mproxy is handing over to a new process (pid ${request.pid}); retry in a moment`))
      await this.#parts.saveState()
    } catch (err) {
      this.#setState('serving', { reason: `the state could not be saved: ${oneLine(err)}` })
      throw err
    }
    if (dropped.aborted) {
      this.#setState('serving', { reason: `pid ${request.pid} went away` })
      throw new TakeoverFailedError(`pid ${request.pid} went away`)
    }
    this.#setState('prepared')
    prepared(this.#parts.describe())
    await this.#hold(dropped)
    return `handed over to pid ${request.pid}`
  }

  /** `commit`: the new primary listens; this one stops now. */
  commit(request: CommitRequest): CommitResponse {
    // A primary told to stop meanwhile stops, and removes its socket: nobody may take it over now.
    if (this.#parts.stopping) throw new ShuttingDownError('mproxy is shutting down')
    if (this.#state !== 'prepared' || request.pid !== this.#successor) {
      throw new TakeoverFailedError(`pid ${process.pid} has no takeover by pid ${request.pid} prepared (${this.#state === 'serving' ? 'it was abandoned' : this.#state})`)
    }
    this.#setState('committed')
    // Set before anyone learns of the commit: the old primary's stop waits on it.
    this.#released = Promise.race([this.#leaseEnded, new Promise<void>((resolve) => setTimeout(resolve, RELEASE_TIMEOUT_MS))])
    this.#commit(request.pid)
    return { pid: process.pid }
  }

  // Private

  /** Holds the prepared state until the commit, a drop of the lease, or the deadline. */
  #hold(dropped: AbortSignal): Promise<void> {
    const pid = this.#successor
    this.#leaseEnded = new Promise<void>((resolve) => dropped.addEventListener('abort', () => resolve(), { once: true }))
    return new Promise<void>((resolve, reject) => {
      const abandon = (reason: string) => {
        if (this.#state !== 'prepared') return
        clearTimeout(timer)
        this.#setState('serving', { reason })
        reject(new TakeoverFailedError(reason))
      }
      const timer = setTimeout(() => abandon(`pid ${pid} did not take over within ${formatDuration(HANDOVER_TIMEOUT_MS)}`), HANDOVER_TIMEOUT_MS)
      void this.#leaseEnded.then(() => abandon(`pid ${pid} went away before taking over`))
      void this.committed.then(() => {
        clearTimeout(timer)
        resolve(this.#released)
      })
    })
  }

  /** Every change of state happens here, and is logged. */
  #setState(next: HandoverState, details: { version?: string; reason?: string } = {}): void {
    const fields = { pid: this.#successor, from: this.#state, to: next, ...details }
    this.#state = next
    switch (next) {
      case 'preparing':
        log('info', `handing over to pid ${fields.pid}`, fields)
        return
      case 'prepared':
        log('info', 'ready to hand over: changes are refused until the takeover ends', fields)
        return
      case 'committed':
        log('info', `handed over to pid ${fields.pid}`, fields)
        return
      case 'serving':
        this.#parts.gate.open()
        log('warn', `handover to pid ${fields.pid} abandoned: serving as before`, fields)
        return
      default:
        assertNever(next)
    }
  }
}

/** The new primary's side of a takeover. */
export class Takeover {
  readonly #client: ControlClient
  readonly #lease: TakeoverLease
  readonly #self: number

  /**
   * Asks the proxy running on the first of `socketPaths` where one answers (this process's
   * socket path, then the state dir's) to hand over to this process. Undefined when none answers
   * (sockets and links a crashed proxy left behind are removed).
   */
  static async begin(socketPaths: readonly string[], self: PrepareRequest): Promise<Takeover | undefined> {
    let socketPath: string | undefined
    for (const candidate of new Set(socketPaths)) {
      if (await answers(candidate)) {
        socketPath = candidate
        break
      }
    }
    if (socketPath === undefined) {
      for (const candidate of socketPaths) await fs.rm(candidate, { force: true })
      return undefined
    }
    const client = new ControlClient({ socket: socketPath })
    let lease: TakeoverLease
    try {
      lease = await client.prepare(self)
    } catch (err) {
      throw new AlreadyRunningError(`another mproxy is running with the control socket ${socketPath} and did not hand over: ${oneLine(err)}`)
    }
    const from = lease.answer
    log('info', `taking over from pid ${from.pid}`, { pid: from.pid, version: from.version, http: from.httpPort, https: from.httpsPort })
    return new Takeover(client, lease, self.pid)
  }

  private constructor(client: ControlClient, lease: TakeoverLease, self: number) {
    this.#client = client
    this.#lease = lease
    this.#self = self
  }

  /** The primary being taken over. */
  get from(): PrepareResponse {
    return this.#lease.answer
  }

  /**
   * The configured ports, with the old primary's wherever the configured one is 0, and the
   * protocols whose port is the old primary's: the new workers bind alongside its sockets.
   */
  ports(configured: { httpPort: number; httpsPort: number }): { httpPort: number; httpsPort: number; joining: ListenProtocol[] } {
    const httpPort = configured.httpPort || this.from.httpPort
    const httpsPort = configured.httpsPort || this.from.httpsPort
    const joining: ListenProtocol[] = []
    if (httpPort === this.from.httpPort) joining.push('http')
    if (httpsPort !== 0 && httpsPort === this.from.httpsPort) joining.push('https')
    return { httpPort, httpsPort, joining }
  }

  /**
   * Once every worker listens: commits, puts this process's control socket in place (see
   * ControlServer.publish), tells systemd that this is the main process now, and lets go of the
   * lease, after which the old primary closes its control server and exits once drained.
   */
  async complete(control: { publish(): Promise<void> }): Promise<void> {
    const outcome = await this.#commit()
    await control.publish()
    const pid = this.from.pid
    if (outcome === 'committed') log('info', `took over from pid ${pid}`, { pid })
    else log('warn', `pid ${pid} went away before the commit: starting as a new proxy`, { pid })
    await notifySystemd(`MAINPID=${process.pid}`)
    this.#lease.release()
  }

  /** Lets go of the lease before the commit: the old primary resumes as if nothing happened. */
  abandon(): void {
    this.#lease.release()
  }

  // Private

  /** Tells the old primary to stop: `gone` when it died meanwhile (this is a normal start then). */
  async #commit(): Promise<'committed' | 'gone'> {
    try {
      await this.#client.commit({ pid: this.#self })
      return 'committed'
    } catch (err) {
      if (err instanceof ProxyNotRunningError) return 'gone'
      throw new TakeoverFailedError(`pid ${this.from.pid} refused the takeover: ${oneLine(err)}`)
    }
  }
}

/** Whether a proxy answers on the control socket. */
function answers(socketPath: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath)
    probe.once('connect', () => { probe.destroy(); resolve(true) })
    probe.once('error', () => resolve(false))
  })
}
