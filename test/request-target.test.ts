/**
 * The request target reaches the app byte for byte: no normalization of dot segments or
 * slashes, no decoding or re-encoding, no dropped empty query, and the asterisk and absolute
 * forms as sent. The client and the upstream are raw sockets, so neither side's HTTP library
 * can rewrite what is compared.
 */
import { startProxy, type Proxy } from './helpers'
import { rawRequest, responseBytes, startRawUpstream, type RawUpstream } from './raw-http'

const HOST = 'app.test'

describe('request target', () => {
  let upstream: RawUpstream
  let proxy: Proxy
  beforeAll(async () => {
    upstream = await startRawUpstream((req, socket) => socket.write(responseBytes(200, 'ok')))
    proxy = await startProxy({ workers: 1 })
    await proxy.deploy([upstream.address], ['--host', HOST])
  })

  it.each([
    ['dot-dot segments', 'GET', '/a/../b'],
    ['dot segments', 'GET', '/a/./b/'],
    ['double slashes', 'GET', '//double//slash'],
    ['encoded slash and dots', 'GET', '/x%2Fy%2e%2E'],
    ['quotes and angle brackets in the query', 'GET', '/q?x=%27&y="<>'],
    ['an empty query', 'GET', '/p?'],
    // Node's parser accepts a backslash in the target (checked against node:http), so the
    // proxy does not answer 400 before routing and the case applies.
    ['a backslash', 'GET', '/back\\slash'],
    ['the asterisk form', 'OPTIONS', '*'],
    ['the absolute form', 'GET', `http://${HOST}/abs?q`],
  ])('passes %s through unchanged: %s %s', async (_case, method, target) => {
    const before = upstream.requests.length

    const response = await rawRequest(proxy.port, `${method} ${target} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`)

    expect(response.status).toBe(200)
    const received = upstream.requests.slice(before)
    expect(received.map((req) => req.line)).toEqual([`${method} ${target} HTTP/1.1`])
  })
})
