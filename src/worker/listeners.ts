/**
 * How a worker listens. Every worker slot owns one SO_REUSEPORT socket per protocol: the kernel
 * spreads connections over the slots' sockets and the primary never accepts. The first worker
 * of a slot binds the socket and hands a copy to the primary; the slot's later workers listen on
 * the copy the primary hands them, so the socket outlives each of them.
 */
import net from 'node:net'
import type { ListenHandle, ListenSource } from '../ipc/messages'

export interface ListenOrder {
  source: ListenSource
  port: number
  /** The slot's socket, with `attached`. */
  handle?: ListenHandle
}

export interface Listening {
  port: number
  /** The socket when the worker bound a new one: the primary keeps it for the slot. */
  newSocket?: ListenHandle
}

/** Listens as the primary ordered; rejects with the listen error (see describeListenError). */
export async function listen(server: net.Server, order: ListenOrder): Promise<Listening> {
  if (order.source === 'attached') {
    if (!order.handle) throw new Error('the primary sent no socket to listen on')
    // Listening on a TCP handle is always exclusive: node:cluster does not get involved.
    return { port: await listenOn(server, order.handle) }
  }
  // SO_REUSEPORT would quietly share a port with any process of this user that listens on it
  // the same way (a second proxy with another state dir, say). A plain listen first fails then.
  if (order.source === 'bind-first' && order.port !== 0) await checkPortFree(order.port)
  // `exclusive`: this worker binds the socket itself instead of asking node:cluster's primary.
  const port = await listenOn(server, { port: order.port, exclusive: true, reusePort: true })
  const handle = (server as unknown as { _handle: ListenHandle | null })._handle
  if (!handle) throw new Error('the server listens but has no handle')
  return { port, newSocket: handle }
}

export function describeListenError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE': return 'address already in use (another proxy or web server?)'
    case 'EACCES': return 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
    default: return err.code ?? err.message
  }
}

// Private

async function checkPortFree(port: number): Promise<void> {
  const probe = net.createServer()
  await listenOn(probe, { port, exclusive: true })
  await new Promise((resolve) => probe.close(resolve))
}

function listenOn(server: net.Server, what: ListenHandle | net.ListenOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(what, () => {
      server.off('error', reject)
      const address = server.address()
      resolve(typeof address === 'object' && address ? address.port : 0)
    })
  })
}
