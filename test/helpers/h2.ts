/** Test helpers: an HTTP/2 client (node:http2) for the proxy's HTTPS port */
import * as http2 from 'node:http2'
import { CLI_TIMEOUT_MS, SHORT_TIMEOUT_MS } from './timing'
import { onCleanup } from './cleanup'

export interface H2Response {
  status: number
  headers: http2.IncomingHttpHeaders
  body: string
}

export interface H2Options {
  /** PEM of the CA to trust. */
  ca: string
  /** SNI, and the `:authority` of every request. */
  servername: string
}

/** One HTTP/2 session to 127.0.0.1:`port`, resolved once ALPN has settled on a protocol. */
export function connectH2(port: number, opts: H2Options): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${opts.servername}:${port}`, {
      ca: opts.ca,
      servername: opts.servername,
      // The name resolves nowhere: connect to loopback.
      lookup: (_hostname, options, callback) => {
        if ((options as { all?: boolean }).all) (callback as unknown as (err: null, all: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }])
        else callback(null, '127.0.0.1', 4)
      },
    })
    onCleanup(() => session.destroy())
    session.once('connect', () => resolve(session))
    session.once('error', reject)
    // Errors after the connection are reported through the requests.
    session.on('error', () => {})
  })
}

export interface H2RequestOptions {
  path?: string
  method?: string
  headers?: http2.OutgoingHttpHeaders
  body?: string | Buffer
  timeoutMs?: number
}

/** One request (stream) on `session`; rejects on stream errors (resets, refused streams). */
export function h2Request(session: http2.ClientHttp2Session, opts: H2RequestOptions = {}): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': opts.method ?? 'GET', ':path': opts.path ?? '/', ...opts.headers }, { endStream: opts.body === undefined })
    const chunks: Buffer[] = []
    let head: http2.IncomingHttpHeaders | undefined
    stream.on('response', (headers) => (head = headers))
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => {
      if (!head) return reject(new Error('stream ended without a response'))
      resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks).toString('utf8') })
    })
    stream.on('error', reject)
    stream.setTimeout(opts.timeoutMs ?? CLI_TIMEOUT_MS, () => stream.close(http2.constants.NGHTTP2_CANCEL))
    stream.on('close', () => {
      if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) reject(new Error(`stream closed with code ${stream.rstCode}`))
    })
    if (opts.body !== undefined) stream.end(opts.body)
  })
}

export interface H2LoadResult {
  ok: number
  failed: number
  /** Streams the server refused with its GOAWAY (never processed, safe to retry): each was retried. */
  refused: number
  /** New sessions opened after the server closed one (GOAWAY). */
  reconnects: number
  bodies: Map<string, number>
  errors: string[]
}

export interface H2Load {
  snapshot(): H2LoadResult
  stop(): Promise<H2LoadResult>
}

/**
 * Keeps `streams` GETs in flight, spread over `sessions` sessions, until stopped. A session the
 * server closes (GOAWAY) is replaced by a new one, and a stream it refused is sent again, as a
 * browser does; any other failure counts.
 */
export function runH2Load(port: number, opts: H2Options & { sessions: number; streams: number; path?: string }): H2Load {
  const result: H2LoadResult = { ok: 0, failed: 0, refused: 0, reconnects: 0, bodies: new Map(), errors: [] }
  let running = true
  const sessions: (http2.ClientHttp2Session | undefined)[] = Array.from({ length: opts.sessions }, () => undefined)
  const live = new Set<http2.ClientHttp2Session>()
  const sessionFor = async (slot: number): Promise<http2.ClientHttp2Session> => {
    let session = sessions[slot]
    if (session && !session.closed && !session.destroyed) return session
    if (session) result.reconnects++
    session = await connectH2(port, opts)
    live.add(session)
    session.once('close', () => live.delete(session!))
    // Someone else may have replaced it meanwhile: use theirs, close ours when done.
    const current = sessions[slot]
    if (current && !current.closed && !current.destroyed) {
      session.close()
      return current
    }
    sessions[slot] = session
    return session
  }
  const worker = async (index: number): Promise<void> => {
    const slot = index % opts.sessions
    while (running) {
      try {
        const res = await h2Request(await sessionFor(slot), { path: opts.path ?? '/', timeoutMs: SHORT_TIMEOUT_MS * 2 })
        if (res.status === 200) {
          result.ok++
          result.bodies.set(res.body, (result.bodies.get(res.body) ?? 0) + 1)
        } else {
          fail(`status ${res.status}: ${res.body.slice(0, 100)}`)
        }
      } catch (err) {
        const message = (err as Error).message
        if (isRefused(err as NodeJS.ErrnoException)) result.refused++
        else fail(`error: ${message}`)
      }
    }
  }
  const fail = (what: string): void => {
    result.failed++
    if (result.errors.length < 20) result.errors.push(what)
  }
  const workers = Array.from({ length: opts.streams }, (_, i) => worker(i))
  let stopped: Promise<H2LoadResult> | undefined
  const stop = (): Promise<H2LoadResult> => {
    running = false
    stopped ??= Promise.all(workers).then(() => {
      for (const session of live) session.close()
      return result
    })
    return stopped
  }
  onCleanup(() => stop())
  return { snapshot: () => ({ ...result, bodies: new Map(result.bodies), errors: [...result.errors] }), stop }
}

/**
 * Refused by a GOAWAY: the stream was opened past the last stream the server processed, or on
 * a session that had already received the GOAWAY.
 */
function isRefused(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ERR_HTTP2_GOAWAY_SESSION' || err.code === 'ERR_HTTP2_INVALID_SESSION' ||
    err.message === `stream closed with code ${http2.constants.NGHTTP2_REFUSED_STREAM}` ||
    (err.code === 'ERR_HTTP2_STREAM_ERROR' && err.message.includes('NGHTTP2_REFUSED_STREAM'))
}
