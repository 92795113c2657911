/**
 * What the app learns about the client comes from the proxy, never from the client: headers
 * that name the client's address, scheme, host or port are replaced or removed for an untrusted
 * peer, whatever their case and however often they were sent. Behind a `--trusted-proxy` the
 * X-Forwarded-* values it sends are kept, and X-Forwarded-For is appended to (README, "Routing
 * and headers"; `run --help`: "whose X-Forwarded-* headers are kept"); the same for any peer of a
 * service deployed with `--forward-headers`.
 *
 * Requests are written by hand, so header case and repetition are exactly as listed, and the app
 * answers with its raw header list, so repeated headers are not merged before they are compared.
 */
import { openUpgrade, startBackend, startProxy } from './helpers'
import { rawRequest } from './raw-http'

const HOST = 'app.test:8080'
/** How far X-Request-Start may be from the test's clock (same machine, busy). */
const REQUEST_START_SLACK_MS = 5_000

/** Header lines a client could use to lie about itself, each with the value it sends. */
const SPOOFED: Array<[string, string]> = [
  ['Forwarded', 'for=6.6.6.6;proto=https;host=evil.test'],
  ['X-Forwarded-For', '6.6.6.6'],
  ['x-FORWARDED-for', '7.7.7.7'],
  ['X-Forwarded-Proto', 'https'],
  ['X-Forwarded-Host', 'evil.test'],
  ['X-Forwarded-Ssl', 'on'],
  ['X-Forwarded-Scheme', 'https'],
  ['X-Forwarded-Port', '443'],
  ['X-Real-IP', '6.6.6.6'],
  ['x-real-ip', '8.8.8.8'],
  ['True-Client-IP', '6.6.6.6'],
  ['X-Request-Start', 't=42'],
]

type RawHeaders = Array<[string, string]>

/** Values of every line of header `name` (case-insensitive), in order. */
function valuesOf(headers: RawHeaders, name: string): string[] {
  return headers.filter(([key]) => key.toLowerCase() === name.toLowerCase()).map(([, value]) => value)
}

/** Whether two header values have an element in common (`,` and `;` separate elements). */
function sharesElement(a: string, b: string): boolean {
  const elements = (value: string) => value.split(/[,;]/).map((element) => element.trim().toLowerCase())
  const mine = new Set(elements(a))
  return elements(b).some((element) => mine.has(element))
}

/** The app answers `/raw-headers` with the header lines it received, as [name, value] pairs. */
async function startHeaderEcho(): Promise<{ address: string }> {
  return startBackend((req, res) => {
    const pairs: RawHeaders = []
    for (let i = 0; i < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i], req.rawHeaders[i + 1]])
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(pairs))
  })
}

async function headersSeenByApp(port: number, lines: RawHeaders, host = HOST): Promise<RawHeaders> {
  const head = lines.map(([name, value]) => `${name}: ${value}\r\n`).join('')
  const response = await rawRequest(port, `GET /raw-headers HTTP/1.1\r\nHost: ${host}\r\n${head}Connection: close\r\n\r\n`)
  if (response.status !== 200) throw new Error(`the proxy answered ${response.status}: ${response.body.toString().slice(0, 200)}`)
  return JSON.parse(response.body.toString()) as RawHeaders
}

describe('client-supplied forwarding headers', () => {
  it('never reach the app from an untrusted peer: the proxy states the client, scheme, host and start time', async () => {
    const backend = await startHeaderEcho()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address])
    const sentAt = Date.now()

    const seen = await headersSeenByApp(proxy.port, SPOOFED)

    // One comparison, so a failure shows every deviation at once.
    const start = valuesOf(seen, 'x-request-start')
    const startMs = Number(/^t=(\d{13})$/.exec(start[0] ?? '')?.[1] ?? NaN)
    expect({
      'x-forwarded-for': valuesOf(seen, 'x-forwarded-for'),
      'x-forwarded-proto': valuesOf(seen, 'x-forwarded-proto'),
      'x-forwarded-host': valuesOf(seen, 'x-forwarded-host'),
      'x-request-start': start.length === 1 && Math.abs(startMs - sentAt) < REQUEST_START_SLACK_MS ? 'the proxy\'s t=<now ms>' : start,
      // Any other header the client sent is gone, or carries the proxy's value instead.
      'client values that reached the app': SPOOFED.filter(([name, value]) => valuesOf(seen, name).some((seenValue) => sharesElement(seenValue, value))),
    }).toEqual({
      'x-forwarded-for': ['127.0.0.1'],
      'x-forwarded-proto': ['http'],
      'x-forwarded-host': [HOST],
      'x-request-start': 'the proxy\'s t=<now ms>',
      'client values that reached the app': [],
    })
  })

  it.each([
    ['X-Forwarded-For sent twice in odd case', [['X-Forwarded-For', '6.6.6.6'], ['x-FORWARDED-for', '7.7.7.7']]],
    ['X-Forwarded-Proto sent twice', [['x-forwarded-proto', 'https'], ['X-FORWARDED-PROTO', 'wss']]],
    ['X-Forwarded-Host in upper case', [['X-FORWARDED-HOST', 'evil.test']]],
  ] as Array<[string, RawHeaders]>)('are replaced when %s', async (_case, lines) => {
    const backend = await startHeaderEcho()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address])

    const seen = await headersSeenByApp(proxy.port, lines)

    expect(valuesOf(seen, 'x-forwarded-for')).toEqual(['127.0.0.1'])
    expect(valuesOf(seen, 'x-forwarded-proto')).toEqual(['http'])
    expect(valuesOf(seen, 'x-forwarded-host')).toEqual([HOST])
  })

  it('are kept and appended to behind a --trusted-proxy', async () => {
    const backend = await startHeaderEcho()
    const proxy = await startProxy({ workers: 1, args: ['--trusted-proxy', '127.0.0.1/32'] })
    await proxy.deploy([backend.address])

    const seen = await headersSeenByApp(proxy.port, [
      ['X-Forwarded-For', '203.0.113.7'],
      ['x-FORWARDED-for', '198.51.100.9'],
      ['X-Forwarded-Proto', 'https'],
      ['X-Forwarded-Host', 'www.example.com'],
    ])

    // One line, the client's hops in the order sent, then the trusted peer.
    expect(valuesOf(seen, 'x-forwarded-for')).toEqual(['203.0.113.7, 198.51.100.9, 127.0.0.1'])
    expect(valuesOf(seen, 'x-forwarded-proto')).toEqual(['https'])
    expect(valuesOf(seen, 'x-forwarded-host')).toEqual(['www.example.com'])
  })
})

describe('--forward-headers', () => {
  /** What a CDN in front of the proxy says about the client. */
  const FROM_CDN: RawHeaders = [
    ['X-Forwarded-For', '203.0.113.7'],
    ['x-forwarded-for', '198.51.100.9'],
    ['X-Forwarded-Proto', 'https'],
    ['X-Forwarded-Host', 'www.example.com'],
    ['X-Real-IP', '203.0.113.7'],
    ['X-Request-Start', 't=1700000000000'],
  ]

  it('keeps the forwarding headers of any client for that service only, appending the peer to X-Forwarded-For', async () => {
    const backend = await startHeaderEcho()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'behind-cdn.test', '--forward-headers'])
    await proxy.deploy([backend.address], ['--host', 'direct.test'])

    const trusting = await headersSeenByApp(proxy.port, FROM_CDN, 'behind-cdn.test')
    const direct = await headersSeenByApp(proxy.port, FROM_CDN, 'direct.test')

    const forwarding = (seen: RawHeaders) => Object.fromEntries(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'x-request-start']
      .map((name) => [name, valuesOf(seen, name)]))
    expect(forwarding(trusting)).toEqual({
      'x-forwarded-for': ['203.0.113.7, 198.51.100.9, 127.0.0.1'],
      'x-forwarded-proto': ['https'],
      'x-forwarded-host': ['www.example.com'],
      'x-real-ip': ['203.0.113.7'],
      'x-request-start': ['t=1700000000000'],
    })
    expect(forwarding(direct)).toEqual({
      'x-forwarded-for': ['127.0.0.1'],
      'x-forwarded-proto': ['http'],
      'x-forwarded-host': ['direct.test'],
      'x-real-ip': [],
      'x-request-start': [expect.stringMatching(/^t=\d{13}$/)],
    })
    // The request id is read once per request, even when the head is read twice.
    expect(valuesOf(trusting, 'x-request-id')).toEqual([expect.stringMatching(/^[0-9a-f-]{36}$/)])
    const services = Object.fromEntries((await proxy.list()).services.map((service) => [service.name, service.forwardHeaders]))
    expect(services).toEqual({ 'behind-cdn.test': true, 'direct.test': false })
  })

  it('computes what the client did not say', async () => {
    const backend = await startHeaderEcho()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--forward-headers'])

    const seen = await headersSeenByApp(proxy.port, [])

    expect(valuesOf(seen, 'x-forwarded-for')).toEqual(['127.0.0.1'])
    expect(valuesOf(seen, 'x-forwarded-proto')).toEqual(['http'])
    expect(valuesOf(seen, 'x-forwarded-host')).toEqual([HOST])
  })

  it('applies to WebSocket upgrades', async () => {
    const seen: Array<Record<string, unknown>> = []
    const backend = await startBackend()
    backend.server.on('upgrade', (req) => seen.push(req.headers))
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--forward-headers'])

    const upgraded = await openUpgrade(proxy.port, { headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' } })
    upgraded.socket.destroy()
    expect(seen[0]).toMatchObject({ 'x-forwarded-for': '203.0.113.7, 127.0.0.1', 'x-forwarded-proto': 'https' })
  })
})

