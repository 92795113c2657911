/**
 * Buffering and body limits (`deploy --buffer-requests --buffer-responses --buffer-memory
 * --max-request-body --max-response-body`) against a real proxy.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { errorLines, onCleanup, startProxy, waitUntil } from './helpers'
import { connectRaw } from './raw-http'
import { content, openBufferFiles, send, sha256, startBufferingApp } from './buffering-app'

/** The matrix of the reference proxy's body-limit test, with the same limit both ways. */
const MATRIX: Array<[string, string[], number, number, number, number, number]> = [
  // name, buffering flags, memory, max, request bytes, response bytes, status
  ['no buffering, request over the limit', [], 1, 10, 21, 2, 413],
  ['no buffering, response over the limit (Content-Length)', [], 1, 10, 5, 26, 502],
  ['no buffering, both within', [], 1, 10, 10, 10, 200],
  ['both buffered, request over', ['--buffer-requests', '--buffer-responses'], 10, 10, 21, 2, 413],
  ['both buffered, response over', ['--buffer-requests', '--buffer-responses'], 10, 10, 5, 26, 502],
  ['both buffered, request spills to disk', ['--buffer-requests', '--buffer-responses'], 5, 20, 11, 2, 200],
  ['both buffered, request over after spilling', ['--buffer-requests', '--buffer-responses'], 5, 20, 29, 2, 413],
  ['both buffered, response spills to disk', ['--buffer-requests', '--buffer-responses'], 5, 20, 5, 11, 200],
  ['both buffered, response over after spilling', ['--buffer-requests', '--buffer-responses'], 5, 20, 5, 39, 502],
  ['requests buffered, request over', ['--buffer-requests'], 10, 10, 21, 2, 413],
  ['requests buffered, response over', ['--buffer-requests'], 10, 10, 5, 27, 502],
  ['responses buffered, request over', ['--buffer-responses'], 10, 10, 21, 2, 413],
  ['responses buffered, response over', ['--buffer-responses'], 10, 10, 5, 27, 502],
]

describe('body limits', () => {
  it('follows the reference matrix, sent with a Content-Length and chunked, the app never seeing a refused request', async () => {
    const app = await startBufferingApp()
    const proxy = await startProxy({ workers: 1 })
    // One service per combination of options: `<flags>-<memory>-<max>.test`.
    const hostOf = ([, flags, memory, max]: (typeof MATRIX)[number]): string => `${flags.join('').replace(/-/g, '') || 'none'}-${memory}-${max}.test`
    const deployed = new Set<string>()
    for (const row of MATRIX) {
      const [, flags, memory, max] = row
      const host = hostOf(row)
      if (deployed.has(host)) continue
      deployed.add(host)
      await proxy.deploy([app.address], ['--host', host, '--buffer-memory', String(memory), '--max-request-body', String(max), '--max-response-body', String(max), ...flags])
    }
    for (const chunked of [false, true]) {
      const results = await Promise.all(MATRIX.map(async (row) => {
        const [name, , , , requestBytes, responseBytes] = row
        const reply = await send(proxy.port, hostOf(row), `/bytes?n=${responseBytes}`, content(requestBytes), { chunked })
        return { name, status: reply.status, intact: reply.status !== 200 || reply.body.equals(content(responseBytes)) }
      }))
      expect(results).toEqual(MATRIX.map(([name, , , , , , status]) => ({ name, status, intact: true })))
    }
    // The refused requests (21 and 29 bytes) never reached the app whole.
    expect(app.seen.filter((seen) => !seen.aborted && (seen.bytes === 21 || seen.bytes === 29))).toEqual([])
  })

  it('answers 413 to a Content-Length over the limit at once, without contacting the app or reading the body', async () => {
    const app = await startBufferingApp()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--host', 'plain.test', '--max-request-body', '1KB'])
    await proxy.deploy([app.address], ['--host', 'buffered.test', '--max-request-body', '1KB', '--buffer-requests'])
    const before = app.appRequests

    for (const host of ['plain.test', 'buffered.test']) {
      const client = await connectRaw(proxy.port)
      client.write(`POST /upload HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5000\r\n\r\n`)
      const response = await client.response()
      expect(response.status).toBe(413)
      expect(response.headers.get('connection')).toEqual(['close'])
      expect(response.body.toString()).toMatch(/<title>413 — Content Too Large<\/title>/)
      expect(await client.waitForClose(5_000)).toBe(true)
    }
    expect(app.appRequests).toBe(before)
  })

  it('cuts a chunked upload growing past the limit without buffering: the client gets 413, the app a cut request', async () => {
    const app = await startBufferingApp()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--host', 'app.test', '--max-request-body', '100KB'])

    const client = await connectRaw(proxy.port)
    client.write('POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n')
    const chunk = content(10_000)
    for (let i = 0; i < 15 && !client.ended; i++) {
      client.write(`${chunk.length.toString(16)}\r\n`)
      client.write(chunk)
      client.write('\r\n')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const response = await client.response()
    expect(response.status).toBe(413)
    expect(response.headers.get('connection')).toEqual(['close'])
    const cut = await waitUntil(() => app.seen.find((seen) => seen.path === '/upload'))
    expect(cut.aborted).toBe(true)
    expect(cut.bytes).toBeLessThanOrEqual(100_000)
  })

  it('cuts a response streaming past the limit without buffering, and logs it', async () => {
    const app = await startBufferingApp()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--host', 'app.test', '--max-response-body', '1MiB'])

    const streamed = await send(proxy.port, 'app.test', '/bytes?n=3000000&chunked=1', undefined)
    expect(streamed.status).toBe(200)
    expect(streamed.cut).toBe(true)
    expect(streamed.body.length).toBeLessThanOrEqual(1_048_576)
    const within = await send(proxy.port, 'app.test', '/bytes?n=1048576&chunked=1', undefined)
    expect([within.status, within.cut, within.body.equals(content(1_048_576))]).toEqual([200, false, true])
    const line = await proxy.waitForLog((entry) => entry.msg === 'response body over the limit')
    expect(line).toMatchObject({ level: 'warn', service: 'app.test', limit: 1_048_576, started: true })
  })
})

describe('buffering', () => {
  it('spills bodies past --buffer-memory to disk and delivers them intact, the request with a Content-Length', async () => {
    const app = await startBufferingApp()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--host', 'app.test', '--buffer-requests', '--buffer-responses', '--buffer-memory', '64KiB'])
    const upload = content(4 * 1_048_576, 7)

    for (const chunked of [false, true]) {
      const reply = await send(proxy.port, 'app.test', '/echo', upload, { chunked })
      expect(reply.status).toBe(200)
      expect(JSON.parse(reply.body.toString())).toMatchObject({ bytes: upload.length, sha256: sha256(upload), contentLength: String(upload.length) })
      expect(JSON.parse(reply.body.toString()).transferEncoding).toBeUndefined()
    }
    const download = await send(proxy.port, 'app.test', '/bytes?n=5000000&chunked=1', undefined)
    expect(download.status).toBe(200)
    expect(download.headers['content-length']).toBe('5000000')
    expect(sha256(download.body)).toBe(sha256(content(5_000_000)))
  })

  it('leaves no temporary file behind: after a complete request, a client gone mid-upload, an upstream reset', async () => {
    const tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mproxy-buffer-test-'))
    onCleanup(() => fs.rmSync(tmpdir, { recursive: true, force: true }))
    const app = await startBufferingApp()
    app.server.prependListener('request', (req) => {
      // `/reset`: half a buffered response, then a reset.
      if (req.url === '/reset') req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 400000\r\n\r\n' + 'x'.repeat(200_000), () => req.socket.destroy())
    })
    const proxy = await startProxy({ workers: 1, env: { TMPDIR: tmpdir } })
    await proxy.deploy([app.address], ['--host', 'app.test', '--buffer-requests', '--buffer-responses', '--buffer-memory', '16KiB'])
    const listing = (): string[] => fs.readdirSync(tmpdir).filter((name) => name.startsWith('mproxy-buffer-'))

    const upload = await connectRaw(proxy.port)
    upload.write('POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1000000\r\n\r\n')
    upload.write(content(100_000))
    const open = await waitUntil(() => (openBufferFiles(proxy.proc.pid!).length > 0 ? openBufferFiles(proxy.proc.pid!) : undefined))
    expect(open).toEqual([expect.stringMatching(new RegExp(`^${tmpdir}/mproxy-buffer-\\d+-[0-9a-f]+ \\(deleted\\)$`))])
    expect(listing()).toEqual([])
    upload.destroy()
    await waitUntil(() => openBufferFiles(proxy.proc.pid!).length === 0, 5_000, 'the buffer file of the abandoned upload to close')

    expect((await send(proxy.port, 'app.test', '/reset', undefined)).status).toBe(502)
    expect((await send(proxy.port, 'app.test', '/echo', content(300_000))).status).toBe(200)
    await waitUntil(() => openBufferFiles(proxy.proc.pid!).length === 0, 5_000, 'every buffer file to close')
    expect(listing()).toEqual([])
    expect(app.seen.some((seen) => seen.bytes === 100_000)).toBe(false)
  })

  it('answers Expect: 100-continue itself, and refuses an upload over the limit before it is sent', async () => {
    const app = await startBufferingApp()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--host', 'app.test', '--buffer-requests', '--max-request-body', '1KB'])
    const head = (length: number): string => `POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`

    const within = await connectRaw(proxy.port)
    within.write(head(500))
    await within.waitFor((text) => text.startsWith('HTTP/1.1 100 Continue\r\n\r\n'))
    within.write(content(500))
    const answered = await within.response()
    expect(answered.status).toBe(200)
    expect(JSON.parse(answered.body.toString())).toMatchObject({ bytes: 500, sha256: sha256(content(500)) })

    const over = await connectRaw(proxy.port)
    over.write(head(5_000))
    expect((await over.response()).status).toBe(413)
    expect(over.text()).not.toContain('100 Continue')
  })

  it('streams server-sent events through, unbuffered and unlimited', async () => {
    const app = await startBufferingApp()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--host', 'app.test', '--buffer-responses', '--max-response-body', '5'])

    const client = await connectRaw(proxy.port)
    client.write('GET /sse HTTP/1.1\r\nHost: app.test\r\n\r\n')
    await client.waitFor((text) => text.includes('data: one'))
    expect(client.text()).not.toContain('data: two')
    app.releaseSse()
    await client.waitFor((text) => text.includes('data: two'))
  })

  it('is saved with the service, shown by list --json, and refuses bad sizes with one line', async () => {
    const app = await startBufferingApp()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--host', 'app.test', '--buffer-requests', '--buffer-memory', '512KiB', '--max-request-body', '1.5MB'])
    const bad = await proxy.cli(['deploy', app.address, '--host', 'app.test', '--max-request-body', '10M'])
    expect(bad.code).toBe(1)
    expect(errorLines(bad.stderr)).toEqual(['Error: invalid max request body "10M": ambiguous unit "M" (use 10MB for powers of 1000 or 10MiB for powers of 1024)'])
    const expected = { requests: true, responses: false, memoryBytes: 524_288, maxRequestBodyBytes: 1_500_000, maxResponseBodyBytes: 0 }
    expect((await proxy.list()).services[0].buffering).toEqual(expected)
    expect((await proxy.cli(['list'])).stdout).toMatch(/\nSERVICE\s+BUFFERING AND LIMITS\napp\.test\s+buffers requests \(512KiB in memory\); max request body 1500KB\n/)
    const help = await proxy.cli(['deploy', '--help'])
    expect(help.stdout).toMatch(/--buffer-memory=SIZE\s+[^[]*\[default: 1MiB\]/)

    await proxy.stop()
    const restarted = await startProxy({ workers: 1, stateDir: proxy.stateDir })
    expect((await restarted.list()).services[0].buffering).toEqual(expected)
    expect((await send(restarted.port, 'app.test', '/echo', content(2_000_000))).status).toBe(413)
  })
})
