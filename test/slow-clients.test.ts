/**
 * Request buffering against slow clients: what the app sees of a slow upload with and without
 * `deploy --buffer-requests`, and how a buffered request keeps the target timeout and the
 * in-flight accounting of a deploy.
 */
import { SHORT_TIMEOUT_MS, delayMs, startProxy, waitUntil } from './helpers'
import { connectRaw, inflightOf } from './raw-http'
import { content, openBufferFiles, sha256, startBufferingApp } from './buffering-app'

interface UploadPlan {
  bytes: number
  chunkBytes: number
  intervalMs: number
}

/** 50 KB at 10 KB/s: five seconds of upload. */
const SLOW_UPLOAD: UploadPlan = { bytes: 50_000, chunkBytes: 1_000, intervalMs: 100 }
/** 25 KB at 10 KB/s, two and a half times TARGET_TIMEOUT_MS. */
const SLOWISH_UPLOAD: UploadPlan = { bytes: 25_000, chunkBytes: 1_000, intervalMs: 100 }
/** How long a buffered upload may occupy the app at most (it takes milliseconds on an idle machine). */
const BUFFERED_APP_BOUND_MS = 500
/** How long a streamed slow upload occupies the app at least (most of its five seconds). */
const STREAMED_APP_FLOOR_MS = 3_000
const TARGET_TIMEOUT_MS = 1_000
const RESPONSE_TIMEOUT_MS = 30_000
/** How long a deploy may take to reach its switch (the CLI starts slowly on a busy machine). */
const DEPLOY_TIMEOUT_MS = 30_000
const DRAIN_TIMEOUT_MS = 500
/** How long the deploy is watched to still be draining after its switch. */
const DRAIN_CHECK_MS = 500

interface UploadResult {
  status: number
  body: string
  lastByteAt: number
}

/** POSTs `plan.bytes` from a raw socket, `chunkBytes` every `intervalMs`, and reads the response. */
async function slowUpload(port: number, host: string, path: string, plan: UploadPlan): Promise<UploadResult> {
  const client = await connectRaw(port)
  const body = content(plan.bytes)
  client.write(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${plan.bytes}\r\nConnection: close\r\n\r\n`)
  for (let sent = 0; sent < plan.bytes && !client.ended; sent += plan.chunkBytes) {
    await delayMs(plan.intervalMs)
    client.write(body.subarray(sent, sent + plan.chunkBytes))
  }
  const lastByteAt = Date.now()
  const response = await client.response(RESPONSE_TIMEOUT_MS)
  client.destroy()
  return { status: response.status, body: response.body.toString(), lastByteAt }
}

describe('request buffering and slow clients', () => {
  it('shields the app from a 10 KB/s upload: buffered, the app has it for milliseconds; streamed, for the whole upload', async () => {
    const app = await startBufferingApp()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--host', 'buffered.test', '--buffer-requests'])
    await proxy.deploy([app.address], ['--host', 'streamed.test'])

    const startedAt = Date.now()
    const [buffered, streamed] = await Promise.all([
      slowUpload(proxy.port, 'buffered.test', '/echo', SLOW_UPLOAD),
      slowUpload(proxy.port, 'streamed.test', '/echo', SLOW_UPLOAD),
    ])
    const uploadMs = Date.now() - startedAt

    for (const result of [buffered, streamed]) {
      expect(result.status).toBe(200)
      expect(JSON.parse(result.body)).toMatchObject({ bytes: SLOW_UPLOAD.bytes, sha256: sha256(content(SLOW_UPLOAD.bytes)) })
    }
    const [bufferedSeen, streamedSeen] = [buffered, streamed].map((result) => JSON.parse(result.body) as { startAt: number; endAt: number })
    const bufferedMs = bufferedSeen.endAt - bufferedSeen.startAt
    const streamedMs = streamedSeen.endAt - streamedSeen.startAt
    console.log(`app busy with a ${SLOW_UPLOAD.bytes / 1000} KB upload at 10 KB/s (${uploadMs} ms): buffered ${bufferedMs} ms, streamed ${streamedMs} ms`)
    expect(bufferedMs).toBeLessThan(BUFFERED_APP_BOUND_MS)
    expect(streamedMs).toBeGreaterThan(STREAMED_APP_FLOOR_MS)
    // The buffered request reached the app only once the upload was complete.
    expect(bufferedSeen.startAt).toBeGreaterThanOrEqual(buffered.lastByteAt - 50)
  })

  it('counts the target timeout from the end of a buffered upload, not from its start', async () => {
    const app = await startBufferingApp()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--host', 'app.test', '--buffer-requests', '--target-timeout', `${TARGET_TIMEOUT_MS}ms`])

    const slow = await slowUpload(proxy.port, 'app.test', '/echo', SLOWISH_UPLOAD)
    expect(slow.status).toBe(200)
    const unanswered = await slowUpload(proxy.port, 'app.test', `/slow?ms=${3 * TARGET_TIMEOUT_MS}`, SLOWISH_UPLOAD)
    expect(unanswered.status).toBe(504)
  })

  it('keeps a request being buffered in flight: a deploy waits for it, and it goes to the new target', async () => {
    const [old, next] = [await startBufferingApp(), await startBufferingApp()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([old.address], ['--host', 'app.test', '--buffer-requests'])

    const body = content(SLOW_UPLOAD.bytes)
    const half = SLOW_UPLOAD.bytes / 2
    const client = await connectRaw(proxy.port)
    client.write(`POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: ${body.length}\r\n\r\n`)
    client.write(body.subarray(0, half))
    await waitUntil(async () => (await inflightOf(proxy, old.address)) === 1, SHORT_TIMEOUT_MS, 'the upload in flight on the old target')
    let deployedAt = 0
    const deployed = proxy.deploy([next.address], ['--host', 'app.test', '--buffer-requests']).then(() => (deployedAt = Date.now()))
    await proxy.waitForLog((line) => line.msg === 'switched' && (line.targets as string[]).includes(next.address), DEPLOY_TIMEOUT_MS)
    // Switched, and draining: the old target still has the upload.
    await delayMs(DRAIN_CHECK_MS)
    expect(deployedAt).toBe(0)
    expect(await inflightOf(proxy, old.address)).toBe(1)

    const lastByteAt = Date.now()
    client.write(body.subarray(half))
    const response = await client.response(RESPONSE_TIMEOUT_MS)
    expect(response.status).toBe(200)
    expect(JSON.parse(response.body.toString())).toMatchObject({ app: next.name, bytes: body.length, sha256: sha256(body) })
    await deployed
    expect(deployedAt).toBeGreaterThanOrEqual(lastByteAt)
    expect(old.seen).toEqual([])
  })
  it('cuts a request still being buffered at the end of the drain timeout: 504, its temporary file closed', async () => {
    const [old, next] = [await startBufferingApp(), await startBufferingApp()]
    const proxy = await startProxy({ workers: 1 })
    const flags = ['--host', 'app.test', '--buffer-requests', '--buffer-memory', '16KiB', '--drain-timeout', `${DRAIN_TIMEOUT_MS}ms`]
    await proxy.deploy([old.address], flags)

    const client = await connectRaw(proxy.port)
    client.write('POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100000\r\n\r\n')
    client.write(content(30_000))
    await waitUntil(() => openBufferFiles(proxy.proc.pid!).length === 1, SHORT_TIMEOUT_MS, 'the upload to spill to a file')
    await proxy.deploy([next.address], flags)

    const response = await client.response()
    expect(response.status).toBe(504)
    expect(response.headers.get('connection')).toEqual(['close'])
    await waitUntil(() => openBufferFiles(proxy.proc.pid!).length === 0, SHORT_TIMEOUT_MS, 'the file to close')
    expect([...old.seen, ...next.seen]).toEqual([])
  })
})
