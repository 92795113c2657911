/**
 * Helpers of the buffering tests: an app that reports what it received and when, a client that
 * sends exact bytes at a chosen pace, and a look at the temporary files a worker holds open.
 */
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as http from 'node:http'
import { startBackend, type Backend } from './helpers'

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Deterministic, incompressible-looking content of `bytes` bytes. */
export function content(bytes: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(bytes)
  let x = seed
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

/** One request as the app saw it. */
export interface Seen {
  path: string
  bytes: number
  sha256: string
  contentLength: string | undefined
  transferEncoding: string | undefined
  /** performance-free wall clock, ms: when the app's handler was called, and when the body ended. */
  startAt: number
  endAt: number
  /** The upload was cut before its end (the proxy gave up on it). */
  aborted: boolean
}

export interface BufferingApp extends Backend {
  seen: Seen[]
}

/**
 * `/up` 200. Every other path reads the body, records it, and answers:
 * - `/bytes?n=N[&chunked=1]`: N bytes of `content(N)`, with a Content-Length or chunked in 64 KiB writes;
 * - `/sse`: an event stream, `data: one`, then `data: two` once `release()` is called;
 * - `/slow?ms=N`: after N ms;
 * - anything else: JSON of what it received.
 */
export async function startBufferingApp(): Promise<BufferingApp & { releaseSse(): void }> {
  const seen: Seen[] = []
  const waiting: Array<() => void> = []
  const backend = await startBackend((req, res, self) => {
    if (req.url === '/up') return void res.end('ok')
    const url = new URL(req.url ?? '/', 'http://app')
    const startAt = Date.now()
    const hash = createHash('sha256')
    let bytes = 0
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      hash.update(chunk)
    })
    req.on('aborted', () => record(true))
    req.on('error', () => {})
    const record = (aborted: boolean): Seen => {
      const entry = {
        path: url.pathname, bytes, sha256: hash.copy().digest('hex'), aborted, startAt, endAt: Date.now(),
        contentLength: req.headers['content-length'], transferEncoding: req.headers['transfer-encoding'],
      }
      seen.push(entry)
      return entry
    }
    req.on('end', () => {
      const entry = record(false)
      if (url.pathname === '/bytes') return sendBytes(res, Number(url.searchParams.get('n')), url.searchParams.has('chunked'))
      if (url.pathname === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
        res.write('data: one\n\n')
        waiting.push(() => res.end('data: two\n\n'))
        return
      }
      if (url.pathname === '/slow') return void setTimeout(() => res.end(self.name), Number(url.searchParams.get('ms')))
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ ...entry, app: self.name }))
    })
  })
  return Object.assign(backend, { seen, releaseSse: () => waiting.splice(0).forEach((release) => release()) })
}

function sendBytes(res: http.ServerResponse, n: number, chunked: boolean): void {
  const body = content(n)
  if (!chunked) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n })
    return void res.end(body)
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream' })
  let offset = 0
  const next = (): void => {
    while (offset < n) {
      const piece = body.subarray(offset, offset + 65_536)
      offset += piece.length
      if (!res.write(piece)) return void res.once('drain', next)
    }
    res.end()
  }
  next()
}

export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  /** The response ended before its framing said it would (cut). */
  cut: boolean
}

/** Sends `body` (with a Content-Length, or chunked in 16 KiB writes) and collects the reply. */
export function send(port: number, host: string, path: string, body: Buffer | undefined, opts: { chunked?: boolean; method?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { host }
    if (body && !opts.chunked) headers['content-length'] = body.length
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? (body ? 'POST' : 'GET'), headers, agent: false })
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      const done = (cut: boolean): void => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), cut })
      res.on('end', () => done(false))
      res.on('aborted', () => done(true))
      res.on('error', () => done(true))
    })
    req.on('error', reject)
    req.setTimeout(30_000, () => req.destroy(new Error('client timeout')))
    if (!body) return void req.end()
    if (!opts.chunked) return void req.end(body)
    for (let offset = 0; offset < body.length; offset += 16_384) req.write(body.subarray(offset, offset + 16_384))
    req.end()
  })
}

/** Pids of the direct children of `pid` (the proxy's workers), from /proc. */
export function childPids(pid: number): number[] {
  return fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name)).filter((name) => {
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid
    } catch {
      return false
    }
  }).map(Number)
}

/**
 * Temporary buffer files the proxy's workers hold open. They are unlinked when created, so
 * they show only here, as `/tmp/mproxy-buffer-... (deleted)`, never in the directory.
 */
export function openBufferFiles(proxyPid: number): string[] {
  return childPids(proxyPid).flatMap((pid) => {
    try {
      return fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
        try {
          return fs.readlinkSync(`/proc/${pid}/fd/${fd}`)
        } catch {
          return ''
        }
      })
    } catch {
      return []
    }
  }).filter((target) => target.includes('mproxy-buffer-'))
}
