/**
 * Upstream connections that read an app's answer even after the app stopped reading the request.
 *
 * An app may answer an upload early (413, 401) and close its connection with the body unread; its
 * kernel then resets the connection. The answer is already in our receive buffer, but the next body
 * write fails with EPIPE or ECONNRESET, and a Node socket destroys itself on a write error before
 * it reads what is buffered: the client got a 502 instead of the app's answer (about one upload in
 * ten on loopback). Here a write error only stops the writes; the read side then reads the answer
 * and the end of the connection, which ends the request as a response or as an upstream error.
 */
import type { Socket } from 'node:net'
import type { buildConnector as BuildConnector } from 'undici'

// Required from its file: undici's index would load fetch, WebSocket and caches (see target-proxy.ts).
const buildConnector = require('undici/lib/core/connect') as typeof BuildConnector

/** After a write error, the read side has this long to end the connection before the error does. */
const READ_AFTER_WRITE_ERROR_MS = 1_000

type WriteCallback = (err?: Error | null) => void

/** undici's TCP connector, with write errors held back as described above. */
export function upstreamConnector(connectTimeoutMs: number): BuildConnector.connector {
  const connect = buildConnector({ timeout: connectTimeoutMs })
  return (options, callback) => {
    connect(options, (err, socket) => {
      if (socket) readPastWriteErrors(socket)
      ;(callback as (err: Error | null, socket: Socket | null) => void)(err, socket)
    })
  }
}

function readPastWriteErrors(socket: Socket): void {
  let writeError: Error | undefined
  // A stream has one write in progress at a time: its callback waits here, so that no function is
  // made per write.
  let pending: WriteCallback | undefined
  const written: WriteCallback = (err) => {
    const done = pending!
    pending = undefined
    if (!isPeerGone(err)) return done(err)
    if (writeError === undefined) {
      writeError = err!
      // The peer is gone, so the read side ends at once; this only bounds a connection that would not.
      setTimeout(() => socket.destroy(writeError), READ_AFTER_WRITE_ERROR_MS).unref()
    }
    done()
  }
  const write = socket._write
  const writev = socket._writev!
  // Writes after the error are dropped: the peer reads nothing more.
  socket._write = function (chunk, encoding, done) {
    if (writeError !== undefined) return void process.nextTick(done)
    pending = done
    write.call(this, chunk, encoding, written)
  }
  socket._writev = function (chunks, done) {
    if (writeError !== undefined) return void process.nextTick(done)
    pending = done
    writev.call(this, chunks, written)
  }
}

function isPeerGone(err: Error | null | undefined): boolean {
  const code = (err as NodeJS.ErrnoException | null | undefined)?.code
  return code === 'EPIPE' || code === 'ECONNRESET'
}
