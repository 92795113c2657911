/** Test helpers: Client */
import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import { CLI_TIMEOUT_MS, SHORT_TIMEOUT_MS } from './timing'
import { onCleanup } from './cleanup'
import { waitUntil } from './wait'

export interface Response {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

export interface RequestOptions {
  host?: string
  path?: string
  method?: string
  headers?: http.OutgoingHttpHeaders
  /** Defaults to `false`: a fresh connection per request. */
  agent?: http.Agent | false
  body?: string
  /** Abort with an error after this long. Default CLI_TIMEOUT_MS. */
  timeoutMs?: number
  /** Aborting destroys the connection, as a browser does when the user navigates away. */
  signal?: AbortSignal
  /** Speak HTTPS, trusting `ca` and sending `servername` as SNI. */
  tls?: { ca: string; servername: string }
}

/** One HTTP request to 127.0.0.1:`port`; rejects on socket errors only. */
export function request(port: number, opts: RequestOptions = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { ...opts.headers }
    if (opts.host) headers.host = opts.host
    const req = (opts.tls ? https : http).request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers,
        agent: opts.agent ?? false,
        signal: opts.signal,
        ...(opts.tls && { ca: opts.tls.ca, servername: opts.tls.servername }),
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
        res.on('aborted', () => reject(new Error('response aborted')))
      },
    )
    req.setTimeout(opts.timeoutMs ?? CLI_TIMEOUT_MS, () => req.destroy(new Error('client timeout')))
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** The body of a successful GET, or throws. Handy inside `waitUntil`. */
export async function getBody(port: number, opts: RequestOptions = {}): Promise<string> {
  const res = await request(port, opts)
  if (res.status !== 200) throw new Error(`GET ${opts.path ?? '/'} answered ${res.status}: ${res.body.slice(0, 200)}`)
  return res.body
}

export interface UpgradedSocket {
  socket: net.Socket
  response: http.IncomingMessage
  /** Writes `text` and resolves with the next `text.length` bytes received. */
  echo(text: string, timeoutMs?: number): Promise<string>
  /** Resolves once the socket is closed (by either side). */
  closed: Promise<void>
}

/** Performs a WebSocket-style upgrade by hand through the proxy and returns the raw socket. */
export function openUpgrade(port: number, opts: { host?: string; path?: string; headers?: http.OutgoingHttpHeaders } = {}): Promise<UpgradedSocket> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { ...opts.headers, connection: 'Upgrade', upgrade: 'websocket' }
    if (opts.host) headers.host = opts.host
    const req = http.request({ host: '127.0.0.1', port, path: opts.path ?? '/ws', headers, agent: false })
    req.on('upgrade', (response: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      let buffer = head.toString('utf8')
      const waiters: Array<() => void> = []
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8')
        for (const waiter of waiters.splice(0)) waiter()
      })
      socket.on('error', () => socket.destroy())
      const closed = new Promise<void>((done) => socket.once('close', () => done()))
      onCleanup(() => socket.destroy())
      resolve({
        socket,
        response,
        closed,
        echo(text, timeoutMs = SHORT_TIMEOUT_MS) {
          socket.write(text)
          return waitUntil(
            () => {
              if (buffer.length < text.length) return undefined
              const out = buffer.slice(0, text.length)
              buffer = buffer.slice(text.length)
              return out
            },
            timeoutMs,
            `echo of ${JSON.stringify(text)}`,
          )
        },
      })
    })
    req.on('response', (res) => reject(new Error(`upgrade refused with ${res.statusCode}`)))
    req.on('error', reject)
    req.end()
  })
}
