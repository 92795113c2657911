/**
 * `deploy --log-request-header` / `--log-response-header`: the service's access log lines get
 * `req_<name>` and `resp_<name>` fields, read here from the proxy's own stdout.
 */
import type http from 'node:http'
import { errorLines, openUpgrade, request, startBackend, startProxy } from './helpers'
import { rawRequest } from './raw-http'

/** Sets a cache header and two cookies on every answer. */
function withHeaders(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.setHeader('cache-control', 'public, max-age=60')
  res.setHeader('set-cookie', ['a=1', 'b=2'])
  res.end('ok')
}

describe('header logging', () => {
  it('adds the request and response headers the service names to its access lines, values escaped', async () => {
    const backend = await startBackend(withHeaders)
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'logged.test',
      '--log-request-header', 'X-Custom,CF-Ray', '--log-request-header', 'x-absent',
      '--log-response-header', 'Cache-Control', '--log-response-header', 'set-cookie,ETag'])
    await proxy.deploy([backend.address], ['--host', 'quiet.test'])

    await rawRequest(proxy.port, 'GET /logged?x=1 HTTP/1.1\r\nHost: logged.test\r\nX-Custom: one\r\nx-custom: say "two" \\ \r\nCF-Ray: 8f1\r\nConnection: close\r\n\r\n')
    await request(proxy.port, { host: 'quiet.test', path: '/quiet' })

    const logged = await proxy.waitForLog((line) => line.msg === 'request' && line.path === '/logged?x=1')
    expect(logged).toMatchObject({
      service: 'logged.test',
      status: 200,
      req_x_custom: 'one,say "two" \\',
      req_cf_ray: '8f1',
      req_x_absent: '',
      resp_cache_control: 'public, max-age=60',
      resp_set_cookie: 'a=1,b=2',
      resp_etag: '',
    })
    // The fields come last, in the order given.
    expect(Object.keys(logged).slice(-6)).toEqual(['req_x_custom', 'req_cf_ray', 'req_x_absent', 'resp_cache_control', 'resp_set_cookie', 'resp_etag'])
    const quiet = await proxy.waitForLog((line) => line.msg === 'request' && line.path === '/quiet')
    expect(Object.keys(quiet).filter((key) => /^(req|resp)_/.test(key))).toEqual([])

    const [service] = (await proxy.list()).services.filter((s) => s.name === 'logged.test')
    expect(service).toMatchObject({ logRequestHeaders: ['x-custom', 'cf-ray', 'x-absent'], logResponseHeaders: ['cache-control', 'set-cookie', 'etag'] })
  })

  it('logs the headers of mproxy\'s own redirects', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'a.test', '--host', 'www.a.test', '--canonical-host', 'a.test', '--log-response-header', 'location'])

    await request(proxy.port, { host: 'www.a.test', path: '/moved' })
    expect(await proxy.waitForLog((line) => line.msg === 'request' && line.path === '/moved')).toMatchObject({ status: 301, resp_location: 'http://a.test/moved' })
  })

  it('adds them to the line of a WebSocket upgrade, at its close', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--log-request-header', 'Sec-WebSocket-Protocol', '--log-response-header', 'Upgrade'])

    const upgraded = await openUpgrade(proxy.port, { path: '/cable', headers: { 'sec-websocket-protocol': 'chat' } })
    upgraded.socket.destroy()

    const line = await proxy.waitForLog((l) => l.msg === 'request' && l.status === 101)
    expect(line).toMatchObject({ path: '/cable', req_sec_websocket_protocol: 'chat', resp_upgrade: 'websocket' })
  })

  it.each([
    ['a name that is no header name', ['--log-request-header', 'X Bad'], 'Error: invalid header name "X Bad" for --log-request-header'],
    ['two names logged as one field', ['--log-response-header', 'X-A,x_a'], 'Error: --log-response-header x-a and x_a would be logged as the same field'],
  ])('refuses %s with one error line', async (_case, flags, message) => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    const refused = await proxy.cli(['deploy', backend.address, ...flags])
    expect(refused.code).toBe(1)
    expect(errorLines(refused.stderr)).toEqual([message])
    expect((await proxy.list()).services).toEqual([])
  })
})
