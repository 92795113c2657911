/**
 * An app may answer before it has read the request body (413 for an upload too large, 401 for a
 * missing token) and then close or drain the connection. Its answer is what the client gets,
 * not a 502 made of the write error that follows, with and without `Expect: 100-continue`.
 */
import * as http from 'node:http'
import * as net from 'node:net'
import { onCleanup, startBackend, startProxy } from './helpers'

const UPLOAD_BYTES = 5 * 1024 * 1024
/**
 * Uploads per case: the app's reset can reach the proxy while it is still writing the body, which
 * once turned one answer in ten into a 502; forty uploads show that race with near certainty.
 */
const UPLOADS = 40
const WRITE_CHUNK_BYTES = 64 * 1024
/** Bound for one upload's answer. */
const UPLOAD_TIMEOUT_MS = 30_000
/** How long mproxy goes on reading an upload it answered early before it closes anyway. */
const LINGER_MS = 5_000

interface EarlyAnswer {
  status: number
  body: string
  /** `close`: the app closes its connection with the body unread; `keep-alive`: Node discards it. */
  connection: 'close' | 'keep-alive'
}

const answers: Array<[string, EarlyAnswer]> = [
  ['413 and closes its connection', { status: 413, body: 'upload too large', connection: 'close' }],
  ['401 on a kept-alive connection', { status: 401, body: 'who are you?', connection: 'keep-alive' }],
]

interface UploadResult {
  status: number
  body: string
  /** The client got `100 Continue` before the answer. */
  continued: boolean
}

/**
 * POSTs UPLOAD_BYTES with backpressure. With `expectContinue` it sends the body only after
 * `100 Continue`. Either way it stops sending once the answer arrives; write errors after the
 * answer (the proxy closing the connection) do not matter.
 */
function upload(port: number, expectContinue: boolean): Promise<UploadResult> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream', 'content-length': UPLOAD_BYTES }
    if (expectContinue) headers.expect = '100-continue'
    const req = http.request({ host: '127.0.0.1', port, path: '/upload', method: 'POST', headers, agent: false })
    const chunk = Buffer.alloc(WRITE_CHUNK_BYTES, 'x')
    let sent = 0
    let answered = false
    let continued = false
    const pump = (): void => {
      while (!answered && sent < UPLOAD_BYTES) {
        const piece = chunk.subarray(0, Math.min(WRITE_CHUNK_BYTES, UPLOAD_BYTES - sent))
        sent += piece.length
        if (!req.write(piece)) return void req.once('drain', pump)
      }
      if (!answered) req.end()
    }
    req.on('continue', () => {
      continued = true
      pump()
    })
    req.on('response', (res) => {
      answered = true
      const chunks: Buffer[] = []
      res.on('data', (data: Buffer) => chunks.push(data))
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), continued })
        req.destroy()
      })
      res.on('error', reject)
    })
    req.on('error', (err) => {
      if (!answered) reject(err)
    })
    req.setTimeout(UPLOAD_TIMEOUT_MS, () => req.destroy(new Error('client timeout')))
    if (!expectContinue) pump()
  })
}

/** UPLOADS uploads one after the other, each answer as `<status> <body>`. */
async function uploadEach(port: number, expectContinue: boolean): Promise<string[]> {
  const answers: string[] = []
  for (let i = 0; i < UPLOADS; i++) {
    const result = await upload(port, expectContinue)
    answers.push(`${result.status} ${result.body}`)
  }
  return answers
}

/** An app that answers `/upload` at once without reading the body, also to `Expect: 100-continue`. */
async function startEarlyAnswerApp(answer: EarlyAnswer): Promise<{ address: string; answered: () => number }> {
  let answered = 0
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.url === '/up') return void res.end('ok')
    answered++
    res.writeHead(answer.status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(answer.body), connection: answer.connection })
    res.end(answer.body)
  }
  const backend = await startBackend(handle)
  // With a listener, Node sends no `100 Continue` by itself: the app answers instead.
  backend.server.on('checkContinue', handle)
  return { address: backend.address, answered: () => answered }
}

describe('early upstream answers', () => {
  it.each(answers)('passes on an app that answers %s without reading a 5 MB upload', async (_case, answer) => {
    const app = await startEarlyAnswerApp(answer)
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address])

    const results = await uploadEach(proxy.port, false)

    expect(results).toEqual(Array(UPLOADS).fill(`${answer.status} ${answer.body}`))
    expect(app.answered()).toBe(UPLOADS)
  })

  it.each(answers)('passes on an app that answers %s to Expect: 100-continue', async (_case, answer) => {
    const app = await startEarlyAnswerApp(answer)
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address])

    const results = await uploadEach(proxy.port, true)

    // The client may have had a `100 Continue` (from the proxy) and sent some of the body; what
    // matters is that the final answer is the app's.
    expect(results).toEqual(Array(UPLOADS).fill(`${answer.status} ${answer.body}`))
    expect(app.answered()).toBe(UPLOADS)
  })

  it('closes the connection of a client that goes on sending after the answer within the linger time', async () => {
    const app = await startEarlyAnswerApp(answers[0][1])
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address])

    const client = await endlessUpload(proxy.port)

    expect(client.received).toMatch(/^HTTP\/1\.1 413 [^]*\r\nconnection: close\r\n[^]*upload too large$/i)
    // Our end came first (FIN), with the answer before it; the cut only after the linger time.
    expect(client.endedAfterMs).toBeLessThan(LINGER_MS / 2)
    expect(client.closedAfterMs).toBeGreaterThanOrEqual(LINGER_MS - 500)
    expect(client.closedAfterMs).toBeLessThan(LINGER_MS * 2)
  })
})

interface EndlessUpload {
  /** Everything the proxy sent. */
  received: string
  /** From the answer to the proxy's end of the connection. */
  endedAfterMs: number
  /** From the answer to the connection's close (the proxy's cut). */
  closedAfterMs: number
}

/** A raw client that declares 1 GB and sends 64 KiB every 20 ms, answer or not, until the proxy cuts it. */
function endlessUpload(port: number): Promise<EndlessUpload> {
  return new Promise((resolve) => {
    // Half-open: the proxy's end does not end this side, which goes on sending.
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    onCleanup(() => socket.destroy())
    const chunk = Buffer.alloc(WRITE_CHUNK_BYTES, 'x')
    let received = ''
    let answeredAt = 0
    let endedAt = 0
    socket.write(`POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${1024 ** 3}\r\n\r\n`)
    const sender = setInterval(() => socket.write(chunk), 20)
    socket.on('data', (data) => {
      received += data.toString()
      answeredAt ||= Date.now()
    })
    socket.on('end', () => { endedAt = Date.now() })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(sender)
      resolve({ received, endedAfterMs: endedAt - answeredAt, closedAfterMs: Date.now() - answeredAt })
    })
  })
}
