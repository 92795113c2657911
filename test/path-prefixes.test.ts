import type http from 'node:http'
import { errorLines, openUpgrade, request, startBackend, startProxy, type Backend } from './helpers'

/**
 * Answers `<name> <path the app saw>`; `/login` sets a cookie for the host at `/` and one for
 * another domain, `/remember` a single cookie (which reaches the proxy as a string, not a list).
 */
function echoPath(req: http.IncomingMessage, res: http.ServerResponse, backend: Backend): void {
  if (req.url === '/up') return void res.end('ok')
  if (req.url?.endsWith('/login')) res.setHeader('set-cookie', ['session=1; Path=/; HttpOnly', 'tracking=1; Domain=other.test; Path=/'])
  if (req.url?.endsWith('/remember')) res.setHeader('set-cookie', 'remember=1; Path=/')
  res.end(`${backend.name} ${req.url}`)
}

describe('path prefixes', () => {
  it('routes one host to several services by longest prefix, stripping it unless told not to', async () => {
    const [site, api, admin] = [await startBackend(echoPath), await startBackend(echoPath), await startBackend(echoPath)]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([site.address], ['--host', 'app.test'])
    const deployed = await proxy.deploy([api.address], ['--host', 'app.test', '--path-prefix', '/api'])
    expect(deployed.stdout).toMatch(/deployed app\.test-api/)
    await proxy.deploy([admin.address], ['--host', 'app.test', '--path-prefix', '/api/admin', '--name', 'admin', '--strip-path-prefix=false'])

    const seen = await Promise.all(['/', '/apiary', '/api', '/api/users?page=2', '/api/admin/x', '/API'].map(async (path) => (await request(proxy.port, { host: 'app.test', path })).body))
    expect(seen).toEqual([
      `${site.name} /`,
      `${site.name} /apiary`,
      `${api.name} /`,
      `${api.name} /users?page=2`,
      `${admin.name} /api/admin/x`,
      `${site.name} /API`,
    ])
    const list = await proxy.cli(['list'])
    expect(list.stdout).toMatch(/app\.test-api\s+app\.test\/api\s/)
  })

  it('answers 404 for paths no prefix of a host covers, without falling through to the default service', async () => {
    const [fallback, api] = [await startBackend(echoPath), await startBackend(echoPath)]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([fallback.address])
    await proxy.deploy([api.address], ['--host', 'app.test', '--path-prefix', '/api'])

    expect((await request(proxy.port, { host: 'app.test', path: '/api/x' })).body).toBe(`${api.name} /x`)
    expect((await request(proxy.port, { host: 'app.test', path: '/other' })).status).toBe(404)
    expect((await request(proxy.port, { host: 'else.test', path: '/other' })).body).toBe(`${fallback.name} /other`)
  })

  it('scopes the cookies an app under a prefix sets for its host, when asked', async () => {
    const api = await startBackend(echoPath)
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([api.address], ['--host', 'app.test', '--path-prefix', '/api', '--scope-cookie-paths'])

    const res = await request(proxy.port, { host: 'app.test', path: '/api/login' })
    expect(res.headers['set-cookie']).toEqual(['session=1; Path=/api; HttpOnly', 'tracking=1; Domain=other.test; Path=/'])
    const single = await request(proxy.port, { host: 'app.test', path: '/api/remember' })
    expect([single.status, single.headers['set-cookie']]).toEqual([200, ['remember=1; Path=/api']])
  })

  it('strips the prefix of a WebSocket upgrade too', async () => {
    let upgradedPath = ''
    const ws = await startBackend(echoPath)
    ws.server.on('upgrade', (req) => { upgradedPath = req.url ?? '' })
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([ws.address], ['--host', 'app.test', '--path-prefix', '/cable'])

    const upgraded = await openUpgrade(proxy.port, { host: 'app.test', path: '/cable/live?room=1' })
    upgraded.socket.destroy()
    expect(upgradedPath).toBe('/live?room=1')
  })

  it('refuses a host and prefix another service owns, and TLS settings other services of the host do not share', async () => {
    const [one, two] = [await startBackend(echoPath), await startBackend(echoPath)]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([one.address], ['--host', 'app.test', '--path-prefix', '/api', '--name', 'one'])

    const taken = await proxy.cli(['deploy', two.address, '--host', 'app.test', '--path-prefix', '/api/', '--name', 'two'])
    expect(taken.code).not.toBe(0)
    expect(errorLines(taken.stderr)).toEqual(['Error: host app.test/api is already used by service one'])

    const tls = await proxy.cli(['deploy', two.address, '--host', 'app.test', '--name', 'two', '--tls-redirect=false', '--ssl'])
    expect(errorLines(tls.stderr)).toEqual([expect.stringMatching(/^Error: host app\.test is served by service one with TLS off: all services of a host must agree/)])

    await proxy.deploy([two.address], ['--host', 'app.test', '--name', 'two'])
    const ambiguous = await proxy.cli(['remove', '--host', 'app.test'])
    expect(errorLines(ambiguous.stderr)).toEqual(['Error: host app.test is served by several services (one, two): give the service name'])
    expect((await proxy.list()).services.map((s) => [s.name, s.pathPrefixes])).toEqual([['one', ['/api']], ['two', ['/']]])
  })

  it('keeps prefixes across a restart', async () => {
    const [site, api] = [await startBackend(echoPath), await startBackend(echoPath)]
    const first = await startProxy({ workers: 1 })
    await first.deploy([site.address], ['--host', 'app.test'])
    await first.deploy([api.address], ['--host', 'app.test', '--path-prefix', '/api', '--strip-path-prefix=false'])
    await first.stop()

    const second = await startProxy({ workers: 1, stateDir: first.stateDir })
    expect((await request(second.port, { host: 'app.test', path: '/api/x' })).body).toBe(`${api.name} /api/x`)
    expect((await request(second.port, { host: 'app.test', path: '/x' })).body).toBe(`${site.name} /x`)
  })
})
