import { BlockList } from 'node:net'
import type { IncomingHttpHeaders } from 'node:http'
import { setForwardedHeaders, stripHopByHop } from '../src/worker/forwarded-headers'

const trusted = new BlockList()
trusted.addSubnet('10.0.0.0', 8, 'ipv4')

describe('stripHopByHop', () => {
  it.each<[string, IncomingHttpHeaders, boolean, IncomingHttpHeaders]>([
    ['removes connection and keep-alive', { connection: 'keep-alive', 'keep-alive': 'timeout=5', accept: '*/*' }, false, { accept: '*/*' }],
    ['removes headers named by Connection', { connection: 'close, X-Secret', 'x-secret': '1', a: 'b' }, false, { a: 'b' }],
    ['removes proxy and te headers', { 'proxy-connection': 'x', te: 'trailers', trailer: 'x', 'proxy-authorization': 'x' }, false, {}],
    ['keeps upgrade headers for upgrades', { connection: 'Upgrade', upgrade: 'websocket', 'keep-alive': '1' }, true, { connection: 'Upgrade', upgrade: 'websocket' }],
    ['drops upgrade on plain requests', { upgrade: 'h2c' }, false, {}],
    ['keeps transfer-encoding (the body still needs framing)', { 'transfer-encoding': 'chunked' }, false, { 'transfer-encoding': 'chunked' }],
  ])('%s', (_case, headers, isUpgrade, expected) => {
    stripHopByHop(headers, isUpgrade)
    expect(headers).toEqual(expected)
  })
})

describe('setForwardedHeaders', () => {
  it.each<[string, IncomingHttpHeaders, string, boolean, Partial<IncomingHttpHeaders>]>([
    ['sets all headers for a direct client', { host: 'app.test' }, '203.0.113.9', false,
      { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'app.test' }],
    ['replaces a spoofed X-Forwarded-For', { host: 'a', 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' }, '203.0.113.9', false,
      { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'http' }],
    ['appends for a trusted proxy', { host: 'a', 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'orig' }, '10.1.2.3', false,
      { 'x-forwarded-for': '198.51.100.7, 10.1.2.3', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'orig' }],
    ['says https on TLS connections', { host: 'a' }, '203.0.113.9', true, { 'x-forwarded-proto': 'https' }],
  ])('%s', (_case, headers, client, encrypted, expected) => {
    setForwardedHeaders(headers, { client, encrypted, trustedProxies: trusted })
    expect(headers).toMatchObject(expected)
  })

  it('keeps a client request id and creates one when missing', () => {
    const given: IncomingHttpHeaders = { 'x-request-id': 'abc' }
    expect(setForwardedHeaders(given, { client: '1.2.3.4', encrypted: false, trustedProxies: undefined })).toBe('abc')
    const missing: IncomingHttpHeaders = {}
    const id = setForwardedHeaders(missing, { client: '1.2.3.4', encrypted: false, trustedProxies: undefined })
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    expect(missing['x-request-id']).toBe(id)
  })
})
