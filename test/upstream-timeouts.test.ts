/**
 * The two upstream timeouts: `deploy --target-timeout` bounds the wait for response headers
 * once the whole request has been sent upstream (a slow upload is not the upstream's delay),
 * and `run --response-idle-timeout` cuts a response whose body stalls.
 */
import { createHash } from 'node:crypto'
import * as http from 'node:http'
import { startBackend, startProxy } from './helpers'
import { connectRaw } from './raw-http'

/** `--target-timeout` of these tests. */
const TARGET_TIMEOUT_MS = 1_000
/** The slow upload: 40 KiB at about 10 KiB/s, four times the target timeout. */
const SLOW_UPLOAD = { bytes: 40 * 1024, chunkBytes: 1024, intervalMs: 100 }
/** A request body that takes twice the target timeout to arrive. */
const SLOWISH_UPLOAD = { bytes: 20 * 1024, chunkBytes: 1024, intervalMs: 100 }
const QUICK_UPLOAD = { bytes: 1024, chunkBytes: 1024, intervalMs: 0 }
/** A timer never fires early; the proxy sends its last byte a little before the app reads it. */
const EARLY_SLACK_MS = 250
/** How late a 504 may come on a busy machine and still be "about the target timeout". */
const LATE_BOUND_MS = 4_000
/** How long one upload test may wait for its response at most. */
const UPLOAD_TIMEOUT_MS = 30_000

/** `run --response-idle-timeout` of these tests. */
const RESPONSE_IDLE_TIMEOUT_MS = 1_000
/** How late the cut of a stalled response may come. */
const IDLE_CUT_BOUND_MS = 5_000
/** The steady stream: a few bytes every STEADY_GAP_MS, well within the idle timeout. */
const STEADY_CHUNKS = 12
const STEADY_GAP_MS = 250

interface UploadPlan {
  bytes: number
  chunkBytes: number
  intervalMs: number
}

interface UploadResult {
  status: number
  body: string
  /** Date.now() when the client wrote its last byte (undefined if it never did). */
  lastByteAt?: number
  responseAt: number
}

/** Deterministic content, so the app can prove it received every byte in order. */
function uploadContent(bytes: number): Buffer {
  return Buffer.from(Array.from({ length: bytes }, (_, i) => i % 251))
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** POSTs `plan.bytes` in chunks on a timer; stops sending if the answer comes first. */
function slowUpload(port: number, path: string, plan: UploadPlan): Promise<UploadResult> {
  const content = uploadContent(plan.bytes)
  return new Promise((resolve, reject) => {
    let sent = 0
    let lastByteAt: number | undefined
    let timer: NodeJS.Timeout | undefined
    const req = http.request({
      host: '127.0.0.1', port, path, method: 'POST', agent: false,
      headers: { 'content-type': 'application/octet-stream', 'content-length': plan.bytes },
    })
    const sendChunk = (): void => {
      const chunk = content.subarray(sent, sent + plan.chunkBytes)
      sent += chunk.length
      if (sent >= plan.bytes) {
        req.end(chunk)
        lastByteAt = Date.now()
      } else {
        req.write(chunk)
        timer = setTimeout(sendChunk, plan.intervalMs)
      }
    }
    req.on('response', (res) => {
      clearTimeout(timer)
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), lastByteAt, responseAt: Date.now() })
        // Answered before the upload was complete: the rest will never be sent.
        if (sent < plan.bytes) req.destroy()
      })
      res.on('error', reject)
    })
    req.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    req.setTimeout(UPLOAD_TIMEOUT_MS, () => req.destroy(new Error('client timeout')))
    sendChunk()
  })
}

/** What the app saw of the upload: every byte (hash), and when the last one arrived. */
interface Received {
  bytes: number
  sha256: string
  endAt: number
}

/** `/echo-hash` answers 200 with the length and hash of the body; `/silent` reads it and never answers. */
async function startUploadApp(): Promise<{ address: string; received: Received[] }> {
  const received: Received[] = []
  const backend = await startBackend((req, res) => {
    if (req.url === '/up') return void res.end('ok')
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const seen = { bytes: body.length, sha256: sha256(body), endAt: Date.now() }
      received.push(seen)
      if (req.url === '/echo-hash') res.end(JSON.stringify(seen))
      // '/silent': never answers; the backend's cleanup closes the connection.
    })
  })
  return { address: backend.address, received }
}

describe('target timeout', () => {
  it('does not count a slow upload: the app that reads it all and answers gets its 200 through', async () => {
    const app = await startUploadApp()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--target-timeout', `${TARGET_TIMEOUT_MS}ms`])

    const result = await slowUpload(proxy.port, '/echo-hash', SLOW_UPLOAD)

    expect(result.status).toBe(200)
    expect(JSON.parse(result.body)).toMatchObject({ bytes: SLOW_UPLOAD.bytes, sha256: sha256(uploadContent(SLOW_UPLOAD.bytes)) })
    expect(app.received).toHaveLength(1)
  })

  it.each([
    ['a quick body', QUICK_UPLOAD],
    ['a body slower than the timeout', SLOWISH_UPLOAD],
  ])('answers 504 about the target timeout after %s was sent to an app that never answers', async (_case, plan) => {
    const app = await startUploadApp()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--target-timeout', `${TARGET_TIMEOUT_MS}ms`])

    const result = await slowUpload(proxy.port, '/silent', plan)

    expect(result.status).toBe(504)
    // The app read the whole body: the clock started when it had been sent.
    expect(app.received).toEqual([expect.objectContaining({ bytes: plan.bytes })])
    const waited = result.responseAt - app.received[0].endAt
    expect(waited).toBeGreaterThanOrEqual(TARGET_TIMEOUT_MS - EARLY_SLACK_MS)
    expect(waited).toBeLessThan(TARGET_TIMEOUT_MS + LATE_BOUND_MS)
  })
})

describe('response idle timeout', () => {
  it('closes the client connection when a response body stalls for --response-idle-timeout', async () => {
    const backend = await startBackend((req, res) => {
      if (req.url === '/up') return void res.end('ok')
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000 })
      res.write('0123456789')
      // ...and nothing more; the backend's cleanup closes the connection.
    })
    const proxy = await startProxy({ workers: 1, args: ['--response-idle-timeout', `${RESPONSE_IDLE_TIMEOUT_MS}ms`] })
    await proxy.deploy([backend.address])
    const client = await connectRaw(proxy.port)

    client.write('GET /stall HTTP/1.1\r\nHost: app.test\r\n\r\n')
    await client.waitFor((text) => text.endsWith('0123456789'), undefined, 'the first 10 bytes of the body')
    const stalledAt = Date.now()

    expect(await client.waitForClose(RESPONSE_IDLE_TIMEOUT_MS + IDLE_CUT_BOUND_MS)).toBe(true)
    expect(client.closedAt! - stalledAt).toBeGreaterThanOrEqual(RESPONSE_IDLE_TIMEOUT_MS - EARLY_SLACK_MS)
    const text = client.text()
    expect(text).toMatch(/^HTTP\/1\.1 200/)
    expect(text.slice(text.indexOf('\r\n\r\n') + 4)).toBe('0123456789')
  })

  it('lets a slow but steady response finish', async () => {
    const backend = await startBackend((req, res) => {
      if (req.url === '/up') return void res.end('ok')
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': STEADY_CHUNKS * 10 })
      let sent = 0
      const timer = setInterval(() => {
        sent++
        if (sent < STEADY_CHUNKS) res.write('0123456789')
        else {
          clearInterval(timer)
          res.end('0123456789')
        }
      }, STEADY_GAP_MS)
      res.once('close', () => clearInterval(timer))
    })
    const proxy = await startProxy({ workers: 1, args: ['--response-idle-timeout', `${RESPONSE_IDLE_TIMEOUT_MS}ms`] })
    await proxy.deploy([backend.address])
    const client = await connectRaw(proxy.port)

    client.write('GET /steady HTTP/1.1\r\nHost: app.test\r\n\r\n')
    const response = await client.response(STEADY_CHUNKS * STEADY_GAP_MS + IDLE_CUT_BOUND_MS)

    expect(response.status).toBe(200)
    expect(response.complete).toBe(true)
    expect(response.body.toString()).toBe('0123456789'.repeat(STEADY_CHUNKS))
  })
})
