/**
 * Upstreams on raw sockets (`net.createServer`): they record each request line and header as
 * sent, and can misbehave in ways node:http will not (close a kept-alive connection instead of
 * answering, switch protocols and drop the connection). Registered with `onCleanup` at once.
 */
import * as net from 'node:net'
import { onCleanup, type Proxy } from './helpers'
import { parseRequest, responseBytes, type RequestMessage } from './raw-http-messages'

export interface UpstreamRequest extends RequestMessage {
  /** Which connection of this upstream it came on (from 0), and its index there (from 0). */
  connection: number
  indexOnConnection: number
  receivedAt: number
}

/**
 * Answers one request by writing to `socket` (or not). Requests with an `Upgrade` header hand
 * the connection over: nothing more is parsed on it, and any bytes past the head are put back
 * on the socket for the handler's own `data` listener.
 */
export type UpstreamHandler = (req: UpstreamRequest, socket: net.Socket) => void

export interface RawUpstream {
  port: number
  /** `127.0.0.1:PORT`, ready for `mproxy deploy`. */
  address: string
  /** Requests received, health checks (`/up`) excluded. */
  requests: UpstreamRequest[]
  /** Connections accepted so far. */
  readonly connections: number
  close(): Promise<void>
}

/**
 * A keep-alive HTTP/1.1 upstream on `net.createServer`: answers `/up` with 200 itself and hands
 * every other request to `handler`, in order per connection.
 */
export async function startRawUpstream(handler: UpstreamHandler): Promise<RawUpstream> {
  const requests: UpstreamRequest[] = []
  const sockets = new Set<net.Socket>()
  let connections = 0
  const server = net.createServer((socket) => {
    const connection = connections++
    let indexOnConnection = 0
    let buffer = Buffer.alloc(0)
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    const onData = (chunk: Buffer): void => {
      buffer = Buffer.concat([buffer, chunk])
      for (;;) {
        const parsed = parseRequest(buffer)
        if (!parsed) return
        const req: UpstreamRequest = { ...parsed.request, connection, indexOnConnection: indexOnConnection++, receivedAt: Date.now() }
        buffer = buffer.subarray(parsed.end)
        if (req.header('upgrade') !== undefined) {
          socket.off('data', onData)
          if (buffer.length) socket.unshift(buffer)
          requests.push(req)
          handler(req, socket)
          return
        }
        if (/^\/up(\?|$)/.test(req.target)) socket.write(responseBytes(200, 'ok'))
        else {
          requests.push(req)
          handler(req, socket)
        }
        if (socket.destroyed) return
      }
    }
    socket.on('data', onData)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  let closed: Promise<void> | undefined
  const upstream: RawUpstream = {
    port,
    address: `127.0.0.1:${port}`,
    requests,
    get connections() {
      return connections
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
      })
      return closed
    },
  }
  onCleanup(() => upstream.close())
  return upstream
}

/** Sum of the in-flight counts that `list --json` reports for one target address. */
export async function inflightOf(proxy: Proxy, address: string): Promise<number> {
  const { services } = await proxy.list()
  return services.flatMap((s) => s.targets).filter((t) => t.address === address).reduce((sum, t) => sum + t.inflight, 0)
}
