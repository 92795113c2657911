/** Test helpers: Backends */
import * as http from 'node:http'
import * as net from 'node:net'
import { onCleanup } from './cleanup'

export type BackendHandler = (req: http.IncomingMessage, res: http.ServerResponse, backend: Backend) => void

export interface Backend {
  /** `backend-<port>` unless a name was given; the default handler answers `/` with it. */
  name: string
  port: number
  /** `127.0.0.1:PORT`, ready to pass to `mproxy deploy`. */
  address: string
  /** Requests received so far (health checks included). */
  readonly requests: number
  /** Requests received so far, excluding the health-check path `/up`. */
  readonly appRequests: number
  server: http.Server
  close(): Promise<void>
}

/**
 * The default upstream: `/up` 200, `/slow?ms=N` answers its name after N ms, `/headers` echoes
 * the request headers as JSON, anything else answers its name. Upgrades get a raw 101 and an
 * echo of every byte.
 */
export function defaultHandler(req: http.IncomingMessage, res: http.ServerResponse, backend: Backend): void {
  const url = new URL(req.url ?? '/', 'http://backend')
  if (url.pathname === '/up') {
    res.end('ok')
  } else if (url.pathname === '/slow') {
    const timer = setTimeout(() => res.end(backend.name), Number(url.searchParams.get('ms') ?? 1000))
    res.once('close', () => clearTimeout(timer))
  } else if (url.pathname === '/headers') {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(req.headers))
  } else {
    res.end(backend.name)
  }
}

export async function startBackend(handler: BackendHandler = defaultHandler, opts: { name?: string } = {}): Promise<Backend> {
  let requests = 0
  let appRequests = 0
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    requests++
    if (!req.url?.startsWith('/up')) appRequests++
    handler(req, res, backend)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    requests++
    appRequests++
    sockets.add(socket)
    socket.on('error', () => socket.destroy())
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    if (head.length) socket.write(head)
    socket.on('data', (chunk) => socket.write(chunk))
    socket.on('end', () => socket.end())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  let closed: Promise<void> | undefined
  const backend: Backend = {
    name: opts.name ?? `backend-${port}`,
    port,
    address: `127.0.0.1:${port}`,
    get requests() {
      return requests
    },
    get appRequests() {
      return appRequests
    },
    server,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
        server.closeAllConnections()
      })
      return closed
    },
  }
  onCleanup(() => backend.close())
  return backend
}
