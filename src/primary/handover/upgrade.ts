/**
 * `mproxy upgrade` (and SIGUSR2): the running primary starts its successor itself, as the same
 * `node bin/run.js run` with its own arguments and environment (the code now on disk), and
 * hands it every slot's listening socket over an IPC channel. The successor's workers listen on
 * those very sockets, so nothing queued on them is lost when this primary's workers close their
 * copies (a second `mproxy run` binds sockets of its own instead, which needs
 * net.ipv4.tcp_migrate_req=1 for that). The takeover itself then runs as for any new primary
 * (see takeover.ts): this side only waits for the commit, or for the successor to fail.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { HandingOverError, ShuttingDownError, TakeoverFailedError } from '../../errors'
import { assertNever, isListenHandle, isUpgradeMessage, sendable, type UpgradeMessage } from '../../ipc/messages'
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'
import type { SlotSocket } from '../workers/listen-sockets'
import type { MutationGate } from './mutation-gate'
import { HANDOVER_TIMEOUT_MS, type Handover } from './takeover'

/** Set in the successor's environment: the pid of the primary that started it. */
const UPGRADE_FROM_ENV = 'MPROXY_UPGRADE_FROM'
/** How long the successor may take to ask for the sockets once started. */
const SOCKETS_TIMEOUT_MS = 15_000
/** How long the successor may take from its start to the commit. */
const UPGRADE_TIMEOUT_MS = SOCKETS_TIMEOUT_MS + HANDOVER_TIMEOUT_MS

export interface UpgradeParts {
  handover: Handover
  gate: MutationGate
  /** Every slot's listening socket, as the supervisor holds them now. */
  sockets(): SlotSocket[]
  readonly stopping: boolean
}

/** The running primary's side: one upgrade at a time. */
export class Upgrader {
  #successor: ChildProcess | undefined
  readonly #parts: UpgradeParts

  constructor(parts: UpgradeParts) {
    this.#parts = parts
  }

  /** Starts the successor and resolves once it has taken over; rejects (this primary serving on) if it fails. */
  async run(progress: (message: string) => void): Promise<string> {
    if (this.#parts.stopping) throw new ShuttingDownError('mproxy is shutting down')
    if (this.#successor) throw new HandingOverError(`an upgrade is already under way (new process pid ${this.#successor.pid})`)
    this.#parts.gate.check()
    const args = [...process.execArgv, ...process.argv.slice(1)]
    const child = spawn(process.execPath, args, {
      // Detached: this primary's exit (and signals to its process group) must not take the successor down.
      detached: true,
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, [UPGRADE_FROM_ENV]: String(process.pid) },
    })
    this.#successor = child
    try {
      return await this.#takeOver(child, progress)
    } catch (err) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      throw err
    } finally {
      this.#successor = undefined
    }
  }

  // Private

  #takeOver(child: ChildProcess, progress: (message: string) => void): Promise<string> {
    const pid = child.pid ?? 0
    log('info', 'upgrade: new primary started', { pid, command: process.argv.slice(1).join(' ') })
    progress(`started a new mproxy (pid ${pid}): ${process.argv.slice(1).join(' ')}`)
    return new Promise<string>((resolve, reject) => {
      const fail = (reason: string) => {
        clearTimeout(timer)
        reject(new TakeoverFailedError(`${reason}; mproxy (pid ${process.pid}) keeps serving`))
      }
      const timer = setTimeout(() => fail(`the new mproxy (pid ${pid}) did not take over within ${formatDuration(UPGRADE_TIMEOUT_MS)}`), UPGRADE_TIMEOUT_MS)
      child.once('error', (err) => fail(`cannot start a new mproxy: ${err.message}`))
      child.once('exit', (code, signal) => fail(`the new mproxy (pid ${pid}) exited (${signal ?? `code ${code}`}) before taking over (its error is in the log)`))
      child.on('message', (message: unknown) => {
        if (isUpgradeMessage(message)) this.#onMessage(child, message, progress)
      })
      void this.#parts.handover.committed.then((successor) => {
        if (successor !== pid) return
        clearTimeout(timer)
        // The successor lives on alone; this process exits once drained.
        child.removeAllListeners('exit')
        child.unref()
        resolve(`upgraded: mproxy pid ${pid} serves now; pid ${process.pid} finishes its requests and exits`)
      })
    })
  }

  #onMessage(child: ChildProcess, message: UpgradeMessage, progress: (message: string) => void): void {
    switch (message.type) {
      case 'send-sockets': {
        const sockets = this.#parts.sockets()
        // IPC keeps the order: every socket arrives before `sockets-sent`.
        for (const { slot, protocol, handle } of sockets) {
          child.send({ mproxy: 1, type: 'socket', slot, protocol } satisfies UpgradeMessage, sendable(handle), { keepOpen: true })
        }
        child.send({ mproxy: 1, type: 'sockets-sent', ack: message.seq, count: sockets.length } satisfies UpgradeMessage)
        progress(`handed ${sockets.length} listening sockets to pid ${child.pid}`)
        return
      }
      case 'socket':
      case 'sockets-sent':
        return
      default:
        assertNever(message)
    }
  }
}

/**
 * The successor's side: when this process was started by an upgrade, the sockets of the primary
 * that started it, per slot. Undefined otherwise.
 */
export function inheritedSockets(): Promise<SlotSocket[] | undefined> {
  const from = process.env[UPGRADE_FROM_ENV]
  // Not for the workers, nor for this primary's own successor one day.
  delete process.env[UPGRADE_FROM_ENV]
  const send = process.send?.bind(process)
  if (!from || !send) return Promise.resolve(undefined)
  return new Promise((resolve, reject) => {
    const sockets: SlotSocket[] = []
    const seq = 1
    const done = () => {
      clearTimeout(timer)
      process.off('message', onMessage)
    }
    const onMessage = (message: unknown, handle: unknown) => {
      if (!isUpgradeMessage(message)) return
      switch (message.type) {
        case 'socket':
          if (isListenHandle(handle)) sockets.push({ slot: message.slot, protocol: message.protocol, handle })
          else log('error', 'upgrade: a socket arrived without its handle', { slot: message.slot, protocol: message.protocol })
          return
        case 'sockets-sent':
          if (message.ack !== seq) return
          done()
          log('info', `received ${sockets.length} listening sockets from pid ${from}`, { pid: Number(from), sockets: sockets.length })
          resolve(sockets)
          return
        case 'send-sockets':
          return
        default:
          assertNever(message)
      }
    }
    const timer = setTimeout(() => {
      done()
      reject(new TakeoverFailedError(`pid ${from} sent no listening sockets within ${formatDuration(SOCKETS_TIMEOUT_MS)}`))
    }, SOCKETS_TIMEOUT_MS)
    process.on('message', onMessage)
    send({ mproxy: 1, type: 'send-sockets', seq } satisfies UpgradeMessage)
  })
}

/** After the commit: the primary that started this one exits; this one needs nothing more from it. */
export function disconnectFromParent(): void {
  if (process.connected) process.disconnect()
}
