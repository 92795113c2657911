/**
 * The listening sockets of the worker slots, as the primary keeps them. Each slot owns one
 * SO_REUSEPORT socket per protocol, and the kernel spreads new connections over the slots: the
 * primary never accepts. Closing a SO_REUSEPORT socket resets the connections queued on it, so
 * the primary holds a copy of each slot's socket and hands it to the slot's next worker: the
 * socket, and what is queued on it, outlives every worker of the slot.
 */
import { log } from '../../lib/logger'
import type { ListenHandle, ListenProtocol, ListenSource, PrimaryMessage } from '../../ipc/messages'

/** A `listen` message for a worker, with the socket to send along when it has one. */
export interface ListenOrder {
  message: Extract<PrimaryMessage, { type: 'listen' }>
  handle?: ListenHandle
}

/** One slot's listening socket, as a takeover hands it to a new primary. */
export interface SlotSocket {
  slot: number
  protocol: ListenProtocol
  handle: ListenHandle
}

/** What a worker reports once it listens. */
export interface ListenResult {
  httpPort: number
  httpsPort: number
  httpsError?: string
}

export class ListenSockets {
  /** The configured ports until the first worker reports; then the ports it listens on. */
  #httpPort: number
  #httpsPort: number
  #httpsError: string | undefined
  #portsKnown = false
  readonly #slots = new Map<number, Map<ListenProtocol, ListenHandle>>()
  /** Protocols whose port the primary being taken over listens on: new sockets join its sockets. */
  readonly #joining: ReadonlySet<ListenProtocol>

  /**
   * `workers`: the number of slots. `sockets`: those an upgrading primary handed over, the slots'
   * sockets from the start. `joining`: see #joining.
   */
  constructor(options: { workers: number; httpPort: number; httpsPort: number; sockets?: SlotSocket[]; joining?: ListenProtocol[] }) {
    this.#httpPort = options.httpPort
    this.#httpsPort = options.httpsPort
    this.#joining = new Set(options.joining)
    for (const { slot, protocol, handle } of options.sockets ?? []) {
      if (slot < options.workers) {
        this.keep(slot, protocol, handle)
      } else {
        // Fewer workers than the upgraded primary had: a socket nobody accepts on must not stay
        // open, or the kernel would keep queueing connections on it for nobody.
        log('warn', 'closing a listening socket handed over for a slot this primary does not have', { slot, protocol })
        handle.close()
      }
    }
  }

  get httpPort(): number {
    return this.#httpPort
  }

  /** 0 when HTTPS could not listen. */
  get httpsPort(): number {
    return this.#httpsPort
  }

  /** Why HTTPS could not listen: then TLS is off. */
  get httpsError(): string | undefined {
    return this.#httpsError
  }

  /**
   * What the next worker of `slot` listens on: the slot's sockets where it has them, else new
   * sockets. Until the first worker has reported its ports (port 0 picks one), only one worker
   * may bind: the supervisor starts slot 0 alone.
   */
  orders(slot: number): ListenOrder[] {
    const orders = [this.#order(slot, 'http', this.#httpPort)]
    if (!(this.#portsKnown && this.#httpsError)) orders.push(this.#order(slot, 'https', this.#httpsPort))
    return orders
  }

  /** A worker of `slot` bound a new socket: keep a copy for the slot's next workers. */
  keep(slot: number, protocol: ListenProtocol, handle: ListenHandle): void {
    let sockets = this.#slots.get(slot)
    if (!sockets) this.#slots.set(slot, sockets = new Map())
    sockets.get(protocol)?.close()
    sockets.set(protocol, handle)
  }

  /** A worker listens. The first report fixes the ports (and whether TLS is on) for every later worker. */
  listening(slot: number, result: ListenResult): void {
    if (!this.#portsKnown) {
      this.#portsKnown = true
      this.#httpPort = result.httpPort
      this.#httpsPort = result.httpsPort
      this.#httpsError = result.httpsError
    } else if (result.httpsError && !this.#httpsError) {
      // Its slot serves no TLS; the kernel sends TLS connections to the other slots' sockets.
      log('warn', 'worker could not listen for HTTPS', { slot, error: result.httpsError })
    }
  }

  /** Every slot's sockets, for a new primary to listen on (see upgrade.ts). */
  all(): SlotSocket[] {
    return [...this.#slots].flatMap(([slot, sockets]) => [...sockets].map(([protocol, handle]) => ({ slot, protocol, handle })))
  }

  /** Closes the primary's copies: a socket closes once no worker listens on it either. */
  closeAll(): void {
    for (const sockets of this.#slots.values()) {
      for (const handle of sockets.values()) handle.close()
    }
    this.#slots.clear()
  }

  // Private

  #order(slot: number, protocol: ListenProtocol, port: number): ListenOrder {
    const handle = this.#slots.get(slot)?.get(protocol)
    // The first socket on a port checks that nobody holds it, unless the primary being taken over does.
    const source: ListenSource = handle ? 'attached' : this.#portsKnown || this.#joining.has(protocol) ? 'bind' : 'bind-first'
    return { message: { mproxy: 1, type: 'listen', protocol, source, port }, handle }
  }
}
