/**
 * An app may answer before it has read the request body (413 for an upload too large, 401 for a
 * missing token) and then close or drain the connection. Its answer is what the client gets,
 * not a 502 made of the write error that follows, with and without `Expect: 100-continue`.
 */
import * as http from 'node:http'
import { startBackend, startProxy } from './helpers'

const UPLOAD_BYTES = 5 * 1024 * 1024
const WRITE_CHUNK_BYTES = 64 * 1024
/** Bound for one upload's answer. */
const UPLOAD_TIMEOUT_MS = 30_000

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

    const result = await upload(proxy.port, false)

    expect([result.status, result.body]).toEqual([answer.status, answer.body])
    expect(app.answered()).toBe(1)
  })

  it.each(answers)('passes on an app that answers %s to Expect: 100-continue', async (_case, answer) => {
    const app = await startEarlyAnswerApp(answer)
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address])

    const result = await upload(proxy.port, true)

    // The client may have had a `100 Continue` (from the proxy) and sent some of the body; what
    // matters is that the final answer is the app's.
    expect([result.status, result.body]).toEqual([answer.status, answer.body])
    expect(app.answered()).toBe(1)
  })
})
