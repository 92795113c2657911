/**
 * Clients that hold connections without making progress are disconnected within about 10 s:
 * silent or stalled TLS handshakes, and request headers sent a byte at a time (slowloris).
 * Clients that are merely slow at the TCP level (a ClientHello in two segments) are served.
 */
import { Duplex } from 'node:stream'
import type * as net from 'node:net'
import * as tls from 'node:tls'
import { delayMs, getBody, makeTestCertificate, onCleanup, startBackend, startProxy } from './helpers'
import { connectRaw, wrapRawSocket, type RawClient } from './raw-http'

const HOST = 'app.mproxy.test'
/** The contract: a handshake or request head that has not completed within this is cut... */
const CLIENT_TIMEOUT_MS = 10_000
/** ...give or take this, on a busy machine. */
const CUT_MARGIN_MS = 5_000
/** The pause between the two TCP segments of the split ClientHello. */
const SPLIT_PAUSE_MS = 200
/** The slowloris: this many connections, each sending one byte of headers a second. */
const SLOW_CLIENTS = 3
const SLOW_BYTE_INTERVAL_MS = 1_000
/** Pace of the normal requests made while the slow clients hang on. */
const NORMAL_REQUEST_GAP_MS = 500
const REQUEST_TIMEOUT_MS = 5_000

/**
 * A transport for tls.connect over `socket` that sends the first 5 bytes of its first write
 * (the TLS record header of the ClientHello), pauses, then the rest: two TCP segments.
 */
class SplitFirstWrite extends Duplex {
  readonly #socket: net.Socket
  #first = true
  /** The first write, which was split: the test checks it was a whole TLS handshake record. */
  firstWrite: Buffer | undefined

  constructor(socket: net.Socket) {
    super()
    this.#socket = socket
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause()
    })
    socket.on('end', () => this.push(null))
    socket.on('error', (err) => this.destroy(err))
    socket.on('close', () => this.destroy())
  }

  override _read(): void {
    this.#socket.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.#first) return void this.#socket.write(chunk, callback)
    this.#first = false
    this.firstWrite = chunk
    this.#socket.write(chunk.subarray(0, 5))
    const timer = setTimeout(() => this.#socket.write(chunk.subarray(5), callback), SPLIT_PAUSE_MS)
    onCleanup(() => clearTimeout(timer))
  }

  override _final(callback: () => void): void {
    this.#socket.end(callback)
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy()
    callback(err)
  }
}

/** Writes `text` one byte every SLOW_BYTE_INTERVAL_MS until the connection closes. */
function dribble(client: RawClient, text: string): void {
  let next = 0
  const timer = setInterval(() => {
    if (client.closedAt !== undefined || next >= text.length) clearInterval(timer)
    else client.write(text[next++])
  }, SLOW_BYTE_INTERVAL_MS)
  onCleanup(() => clearInterval(timer))
}

describe('TLS port', () => {
  it.each([
    ['sends nothing', ''],
    ['sends the first 5 bytes of a ClientHello, then nothing', '\x16\x03\x01\x02\x00'],
  ])('closes a connection that %s within the handshake timeout', async (_case, bytes) => {
    const proxy = await startProxy({ workers: 1 })
    const client = await connectRaw(proxy.httpsPort)
    if (bytes) client.write(Buffer.from(bytes, 'latin1'))

    const closed = await client.waitForClose(CLIENT_TIMEOUT_MS + CUT_MARGIN_MS)

    expect(closed).toBe(true)
  })

  it('completes a handshake whose ClientHello arrives in two TCP segments, and answers', async () => {
    const certificate = makeTestCertificate([HOST])
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', HOST, '--tls-certificate-path', certificate.certFile, '--tls-private-key-path', certificate.keyFile])
    const raw = await connectRaw(proxy.httpsPort)

    const transport = new SplitFirstWrite(raw.socket)
    const secure = tls.connect({ socket: transport, servername: HOST, ca: certificate.ca })
    onCleanup(() => secure.destroy())
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve())
      secure.once('error', reject)
    })
    const client = wrapRawSocket(secure)
    client.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`)
    const response = await client.response()

    expect(response.status).toBe(200)
    expect(response.body.toString()).toBe(backend.name)
    // The split was real: a handshake record (0x16) longer than its 5-byte header.
    expect(transport.firstWrite?.[0]).toBe(0x16)
    expect(transport.firstWrite?.length).toBeGreaterThan(5)
  })
})

describe('slow clients', () => {
  it('disconnects clients that send request headers a byte a second, and serves others meanwhile', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address])
    const slow = await Promise.all(Array.from({ length: SLOW_CLIENTS }, () => connectRaw(proxy.port)))
    for (const client of slow) {
      client.write('GET / HTTP/1.1\r\nHost: app.test\r\n')
      dribble(client, `X-Slow: ${'a'.repeat(600)}\r\n\r\n`)
    }

    const deadline = Date.now() + CLIENT_TIMEOUT_MS + CUT_MARGIN_MS
    const normal: string[] = []
    while (slow.some((client) => client.closedAt === undefined) && Date.now() < deadline) {
      normal.push(await getBody(proxy.port, { timeoutMs: REQUEST_TIMEOUT_MS }).then((body) => body, (err: Error) => err.message))
      await delayMs(NORMAL_REQUEST_GAP_MS)
    }

    const held = slow.map((client) => (client.closedAt === undefined ? 'still open' : client.closedAt - client.connectedAt))
    expect(held.filter((ms) => ms === 'still open' || ms > CLIENT_TIMEOUT_MS + CUT_MARGIN_MS)).toEqual([])
    expect(normal.length).toBeGreaterThan(0)
    expect(normal.filter((body) => body !== backend.name)).toEqual([])
  })
})
