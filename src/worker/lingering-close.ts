/**
 * Closing a client connection whose upload was answered before it was read to the end (an app's
 * early 413 or 401, a body limit, an upstream error).
 *
 * Node closes such a connection once the answer is written. Closing a socket with unread data
 * makes the kernel reset the connection, and a client still sending its body then gets a write
 * error, which most clients (Node's among them) report instead of the answer already in their
 * receive buffer. A lingering close ends our side and goes on reading, and discarding, what the
 * client still sends, until it closes too: it then reads the answer and our end, never a reset.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** A client still sending after this long is cut: its connection is not held for ever. */
const LINGER_MS = 5_000

/** The connection of `req` closes after `res`, with a lingering close (HTTP/1 only). */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.shouldKeepAlive = false
  // An HTTP/2 answer ends its stream, not the connection.
  if (req.httpVersionMajor !== 1) return
  const socket = req.socket
  // Node's server closes a connection after its last answer with `destroySoon`.
  socket.destroySoon = () => lingeringClose(socket, req)
}

function lingeringClose(socket: Socket, req: IncomingMessage): void {
  // The client may have closed first (it had the answer).
  if (socket.destroyed) return
  socket.end()
  // Nothing needs the rest of the body now: it is read and dropped until the client's end. The
  // listeners of its last reader go first (a `readable` listener keeps a stream from flowing).
  req.removeAllListeners('data')
  req.removeAllListeners('readable')
  req.resume()
  // Unref'd: a worker that is stopping does not wait for it; its sockets close as it exits.
  const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref()
  socket.once('close', () => clearTimeout(timer))
}
