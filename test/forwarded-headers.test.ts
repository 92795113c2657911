import { BlockList } from 'node:net'
import type { IncomingHttpHeaders } from 'node:http'
import {
  clientResponseHeaders, isTrustedProxy, readRequestHead, rewriteUpgradeHeaders, type ForwardingContext, type RequestHead,
} from '../src/worker/forwarded-headers'

const RECEIVED_AT_MS = 1_700_000_000_123
const direct: ForwardingContext = { client: '203.0.113.9', encrypted: false, trusted: false, receivedAtMs: RECEIVED_AT_MS }
const viaTrustedProxy: ForwardingContext = { ...direct, client: '10.1.2.3', trusted: true }

function read(raw: string[], ctx: ForwardingContext = direct): RequestHead {
  const head: RequestHead = { host: '', requestId: '', hasBody: false, upstreamHeaders: [] }
  readRequestHead(raw, ctx, head)
  return head
}

/** The upstream headers as [name, value] pairs, without the request id (random when missing). */
function pairs(head: RequestHead): [string, string][] {
  const out: [string, string][] = []
  for (let i = 0; i < head.upstreamHeaders.length; i += 2) {
    if (head.upstreamHeaders[i] !== 'x-request-id') out.push([head.upstreamHeaders[i], head.upstreamHeaders[i + 1]])
  }
  return out
}

const OURS_DIRECT: [string, string][] = [
  ['x-forwarded-for', '203.0.113.9'], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'app.test'], ['x-request-start', `t=${RECEIVED_AT_MS}`],
]

describe('readRequestHead', () => {
  it.each<[string, string[], ForwardingContext, [string, string][]]>([
    ['keeps names, case, order and duplicates', ['Host', 'app.test', 'Accept', '*/*', 'X-Dup', '1', 'x-dup', '2'], direct,
      [['Host', 'app.test'], ['Accept', '*/*'], ['X-Dup', '1'], ['x-dup', '2'], ...OURS_DIRECT]],
    ['drops hop-by-hop headers, Transfer-Encoding and Expect', ['Host', 'app.test', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5',
      'TE', 'trailers', 'Transfer-Encoding', 'chunked', 'Expect', '100-continue', 'Proxy-Authorization', 'x', 'Upgrade', 'h2c'], direct,
      [['Host', 'app.test'], ...OURS_DIRECT]],
    ['drops headers the Connection header names', ['Host', 'app.test', 'Connection', 'close, X-Secret', 'x-secret', '1', 'A', 'b'], direct,
      [['Host', 'app.test'], ['A', 'b'], ...OURS_DIRECT]],
    ['replaces every claim of an untrusted client', ['Host', 'app.test', 'Forwarded', 'for=6.6.6.6', 'X-Forwarded-For', '6.6.6.6',
      'x-FORWARDED-proto', 'https', 'X-Forwarded-Host', 'evil', 'X-Forwarded-Ssl', 'on', 'X-Forwarded-Scheme', 'https', 'X-Forwarded-Port', '443',
      'X-Real-IP', '6.6.6.6', 'True-Client-IP', '6.6.6.6', 'X-Request-Start', 't=1'], direct, [['Host', 'app.test'], ...OURS_DIRECT]],
    ['keeps a trusted proxy\'s claims and appends to X-Forwarded-For', ['Host', 'app.test', 'X-Forwarded-For', '198.51.100.7',
      'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'orig.test', 'X-Real-IP', '198.51.100.7'], viaTrustedProxy,
      [['Host', 'app.test'], ['X-Forwarded-Proto', 'https'], ['X-Forwarded-Host', 'orig.test'], ['X-Real-IP', '198.51.100.7'],
        ['x-forwarded-for', '198.51.100.7, 10.1.2.3'], ['x-request-start', `t=${RECEIVED_AT_MS}`]]],
    ['keeps a trusted proxy\'s X-Request-Start instead of adding a second one', ['Host', 'app.test', 'X-Request-Start', 't=1700000000000'],
      viaTrustedProxy, [['Host', 'app.test'], ['X-Request-Start', 't=1700000000000'], ['x-forwarded-for', '10.1.2.3'], ['x-forwarded-proto', 'http'],
        ['x-forwarded-host', 'app.test']]],
    ['joins a trusted proxy\'s repeated X-Forwarded-For', ['Host', 'app.test', 'X-Forwarded-For', '1.1.1.1', 'X-Forwarded-For', '2.2.2.2'], viaTrustedProxy,
      [['Host', 'app.test'], ['x-forwarded-for', '1.1.1.1, 2.2.2.2, 10.1.2.3'], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'app.test'],
        ['x-request-start', `t=${RECEIVED_AT_MS}`]]],
  ])('%s', (_case, raw, ctx, expected) => {
    expect(pairs(read(raw, ctx))).toEqual(expected)
  })

  it('says https on TLS connections', () => {
    expect(pairs(read(['Host', 'app.test'], { ...direct, encrypted: true }))).toContainEqual(['x-forwarded-proto', 'https'])
  })

  it.each<[string, string[], boolean]>([
    ['no body headers', ['Host', 'a'], false],
    ['Content-Length: 0', ['Content-Length', '0'], false],
    ['Content-Length above 0', ['Content-Length', '12'], true],
    ['chunked', ['Transfer-Encoding', 'chunked'], true],
  ])('body: %s', (_case, raw, expected) => {
    expect(read(raw).hasBody).toBe(expected)
  })

  it('keeps a usable client request id and creates one otherwise', () => {
    const given = read(['Host', 'a', 'X-Request-Id', 'abc'])
    expect(given.requestId).toBe('abc')
    expect(given.upstreamHeaders).toContain('abc')
    const missing = read(['Host', 'a'])
    expect(missing.requestId).toMatch(/^[0-9a-f-]{36}$/)
    expect(read(['X-Request-Id', 'x'.repeat(201)]).requestId).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('keeps the request id it generated when the same head is read again with trust', () => {
    const raw = ['Host', 'a', 'X-Forwarded-For', '198.51.100.7']
    const head = read(raw)
    const generated = head.requestId
    readRequestHead(raw, viaTrustedProxy, head)
    expect(head.requestId).toBe(generated)
    expect(head.upstreamHeaders).toEqual(expect.arrayContaining(['x-request-id', generated, 'x-forwarded-for', '198.51.100.7, 10.1.2.3']))
  })
})

describe('isTrustedProxy', () => {
  const proxies = new BlockList()
  proxies.addSubnet('10.0.0.0', 8, 'ipv4')
  proxies.addSubnet('fd00::', 8, 'ipv6')
  it.each<[string, string, BlockList | undefined, boolean]>([
    ['an address in a trusted network', '10.1.2.3', proxies, true],
    ['an IPv6 address in a trusted network', 'fd00::1', proxies, true],
    ['an address outside them', '203.0.113.9', proxies, false],
    ['an unknown peer', '', proxies, false],
    ['any peer without --trusted-proxy', '10.1.2.3', undefined, false],
  ])('%s', (_case, client, trusted, expected) => {
    expect(isTrustedProxy(client, trusted)).toBe(expected)
  })
})

describe('clientResponseHeaders', () => {
  it.each<[string, IncomingHttpHeaders, boolean, (string | string[])[]]>([
    ['drops hop-by-hop and Connection-named headers', { 'content-type': 'text/plain', connection: 'keep-alive, x-hop', 'keep-alive': 'timeout=5',
      'x-hop': '1', 'transfer-encoding': 'chunked', 'set-cookie': ['a=1', 'b=2'] }, false, ['content-type', 'text/plain', 'set-cookie', ['a=1', 'b=2']]],
    ['adds Connection: close when the client connection must end', { 'content-length': '2' }, true, ['content-length', '2', 'connection', 'close']],
  ])('%s', (_case, headers, close, expected) => {
    expect(clientResponseHeaders(headers, close)).toEqual(expected)
  })
})

describe('rewriteUpgradeHeaders', () => {
  it('keeps the upgrade headers and replaces an untrusted client\'s claims', () => {
    const headers: IncomingHttpHeaders = { host: 'app.test', connection: 'Upgrade', upgrade: 'websocket', 'x-real-ip': '6.6.6.6', forwarded: 'for=x', 'keep-alive': '1' }
    rewriteUpgradeHeaders(headers, direct)
    expect(headers).toEqual({
      host: 'app.test', connection: 'Upgrade', upgrade: 'websocket', 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'http',
      'x-forwarded-host': 'app.test', 'x-request-id': headers['x-request-id'], 'x-request-start': `t=${RECEIVED_AT_MS}`,
    })
  })

  it('keeps a trusted client\'s claims and appends to X-Forwarded-For', () => {
    const headers: IncomingHttpHeaders = { host: 'app.test', 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https', 'x-request-start': 't=1' }
    rewriteUpgradeHeaders(headers, viaTrustedProxy)
    expect(headers).toMatchObject({ 'x-forwarded-for': '198.51.100.7, 10.1.2.3', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.test', 'x-request-start': 't=1' })
  })
})
