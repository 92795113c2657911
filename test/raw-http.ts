/**
 * Raw-socket helpers for tests that pin the proxy's behaviour at the bytes: a client that sends
 * exact bytes and records what came back and when its socket closed (here), the HTTP/1.1
 * message parsing it uses (raw-http-messages.ts) and misbehaving upstreams on
 * `net.createServer` (raw-upstream.ts), all exported from this one module.
 *
 * Everything started here is registered with `onCleanup` the moment it exists.
 */
import * as net from 'node:net'
import { SHORT_TIMEOUT_MS, onCleanup } from './helpers'
import { parseResponse, type RawResponse } from './raw-http-messages'

export * from './raw-http-messages'
export * from './raw-upstream'

// ---------------------------------------------------------------------------------------------
// Client

export interface RawClient {
  socket: net.Socket
  /** Date.now() when the TCP connection was established. */
  connectedAt: number
  /** Every byte received so far. */
  received(): Buffer
  /** The same as latin1 text: one character per byte. */
  text(): string
  /** The peer sent FIN (or the socket closed). */
  readonly ended: boolean
  /** Date.now() when the socket closed, or undefined while it is open. */
  readonly closedAt: number | undefined
  /** The socket error that closed it, if any. */
  readonly error: Error | undefined
  write(data: string | Buffer): void
  /** Resolves with the text received once `predicate` holds; rejects after `timeoutMs`. */
  waitFor(predicate: (text: string) => boolean, timeoutMs?: number, description?: string): Promise<string>
  /** Resolves with whether the socket closed within `timeoutMs` (never rejects). */
  waitForClose(timeoutMs: number): Promise<boolean>
  /** Resolves with whether the peer ended or closed within `timeoutMs` (never rejects). */
  waitForEnd(timeoutMs: number): Promise<boolean>
  /** Resolves with the first complete response, or with what arrived when the socket closed. */
  response(timeoutMs?: number): Promise<RawResponse>
  destroy(): void
}

export interface RawClientOptions {
  /** Keep our side writable after the peer's FIN (to see whether the peer really closed). */
  allowHalfOpen?: boolean
}

/** Opens a plain TCP connection to 127.0.0.1:`port`. */
export function connectRaw(port: number, opts: RawClientOptions = {}): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: opts.allowHalfOpen ?? false })
    onCleanup(() => socket.destroy())
    socket.once('connect', () => {
      socket.off('error', reject)
      socket.setNoDelay(true)
      resolve(wrapRawSocket(socket))
    })
    socket.once('error', reject)
  })
}

/** Records what a connected socket receives; exported for sockets made elsewhere (TLS). */
export function wrapRawSocket(socket: net.Socket): RawClient {
  const chunks: Buffer[] = []
  let ended = false
  let closedAt: number | undefined
  let error: Error | undefined
  const watchers = new Set<() => void>()
  const notify = (): void => {
    for (const watcher of [...watchers]) watcher()
  }
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk)
    notify()
  })
  socket.on('end', () => {
    ended = true
    notify()
  })
  socket.on('error', (err) => (error = err))
  socket.on('close', () => {
    ended = true
    closedAt = Date.now()
    notify()
  })
  const received = (): Buffer => (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))

  /** Resolves with `check()`'s value once defined, or with `onTimeout()` after `timeoutMs`. */
  const watch = <T>(check: () => T | undefined, timeoutMs: number, onTimeout: () => T | Error): Promise<T> =>
    new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        watchers.delete(watcher)
      }
      const watcher = (): void => {
        const value = check()
        if (value !== undefined) {
          done()
          resolve(value)
        }
      }
      const timer = setTimeout(() => {
        done()
        const value = onTimeout()
        if (value instanceof Error) reject(value)
        else resolve(value)
      }, timeoutMs)
      watchers.add(watcher)
      watcher()
    })

  const client: RawClient = {
    socket,
    connectedAt: Date.now(),
    received,
    text: () => received().toString('latin1'),
    get ended() {
      return ended
    },
    get closedAt() {
      return closedAt
    },
    get error() {
      return error
    },
    write(data) {
      if (!socket.destroyed && socket.writable) socket.write(data)
    },
    waitFor(predicate, timeoutMs = SHORT_TIMEOUT_MS, description = 'the expected bytes') {
      return watch(
        () => (predicate(client.text()) ? client.text() : undefined),
        timeoutMs,
        () => new Error(`timed out after ${timeoutMs} ms waiting for ${description}; received ${JSON.stringify(client.text().slice(0, 300))}`),
      )
    },
    waitForClose(timeoutMs) {
      return watch(() => (closedAt !== undefined ? true : undefined), timeoutMs, () => false)
    },
    waitForEnd(timeoutMs) {
      return watch(() => (ended ? true : undefined), timeoutMs, () => false)
    },
    response(timeoutMs = SHORT_TIMEOUT_MS) {
      return watch(
        () => {
          const parsed = parseResponse(received())
          if (parsed?.complete) return parsed
          if (closedAt === undefined) return undefined
          return parsed ?? new Error(`connection closed without a response; received ${JSON.stringify(client.text().slice(0, 300))}`)
        },
        timeoutMs,
        () => new Error(`timed out after ${timeoutMs} ms waiting for a response; received ${JSON.stringify(client.text().slice(0, 300))}`),
      ).then((value) => {
        if (value instanceof Error) throw value
        return value
      })
    },
    destroy: () => socket.destroy(),
  }
  return client
}

/**
 * Sends `bytes` on a fresh connection and resolves with the response (complete, or what came
 * before the proxy closed the connection); the connection is closed afterwards.
 */
export async function rawRequest(port: number, bytes: string | Buffer, timeoutMs = SHORT_TIMEOUT_MS): Promise<RawResponse> {
  const client = await connectRaw(port)
  try {
    client.write(bytes)
    return await client.response(timeoutMs)
  } finally {
    client.destroy()
  }
}
