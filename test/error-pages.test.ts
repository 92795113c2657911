import fs from 'node:fs'
import type http from 'node:http'
import path from 'node:path'
import { errorLines, makeStateDir, request, startBackend, startProxy, waitUntil, type Backend, type Proxy } from './helpers'

/** A backend whose health check can be failed, that resets the connection on `/reset` and answers `/slow` late. */
async function switchableBackend(): Promise<Backend & { healthy: boolean }> {
  const state = { healthy: true }
  const backend = await startBackend((req: http.IncomingMessage, res: http.ServerResponse, self: Backend) => {
    if (req.url === '/up') return void res.writeHead(state.healthy ? 200 : 503).end()
    if (req.url === '/reset') return void req.socket.destroy()
    if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2_000)
    res.end(self.name)
  })
  return Object.defineProperty(backend, 'healthy', { get: () => state.healthy, set: (value: boolean) => { state.healthy = value } }) as Backend & { healthy: boolean }
}

/** A directory holding `files` (name → content). */
function pagesDir(files: Record<string, string>): string {
  const dir = makeStateDir()
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content)
  return dir
}

async function healthOf(proxy: Proxy): Promise<string[]> {
  return (await proxy.list()).services.flatMap((service) => service.targets.map((target) => target.health))
}

describe('error pages', () => {
  it('answers with the service’s own pages, the stop message in its 503 page, and the built-in ones for the rest', async () => {
    const backend = await switchableBackend()
    const dir = pagesDir({
      '503.html': '<title>Custom 503</title><p>{{ .Message }}</p><p>{{.Message}}</p>',
      '502.html': '<title>Custom 502</title><p>[{{ .Message }}]</p>',
      '404.html': '<title>Custom 404</title>',
      'notes.txt': 'not a page',
    })
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'app.test', '--name', 'web', '--error-pages', dir, '--target-timeout', '300ms'])
    expect((await proxy.list()).services[0].errorPagesPath).toBe(dir)

    const failed = await request(proxy.port, { host: 'app.test', path: '/reset' })
    expect([failed.status, failed.headers['content-type'], failed.body]).toEqual([502, 'text/html; charset=utf-8', '<title>Custom 502</title><p>[]</p>'])
    const late = await request(proxy.port, { host: 'app.test', path: '/slow' })
    expect([late.status, late.body.includes('<title>504 — Gateway Timeout</title>')]).toEqual([504, true])
    const unknownHost = await request(proxy.port, { host: 'other.test' })
    expect([unknownHost.status, unknownHost.body.includes('<title>404 — Not Found</title>')]).toEqual([404, true])

    const stop = await proxy.cli(['stop', 'web', '--message', 'Back <soon>'])
    expect(stop.code).toBe(0)
    const stopped = await request(proxy.port, { host: 'app.test' })
    expect([stopped.status, stopped.body]).toEqual([503, '<title>Custom 503</title><p>Back &lt;soon&gt;</p><p>Back &lt;soon&gt;</p>'])

    // Read again at start: the page as it is then.
    fs.writeFileSync(path.join(dir, '503.html'), '<title>Edited 503</title><p>{{ .Message }}</p>')
    await proxy.stop()
    const restarted = await startProxy({ workers: 1, stateDir: proxy.stateDir })
    expect((await request(restarted.port, { host: 'app.test' })).body).toBe('<title>Edited 503</title><p>Back &lt;soon&gt;</p>')
  })

  it.each<[string, () => string, RegExp]>([
    ['a missing directory', () => path.join(makeStateDir(), 'missing'), /: no such directory$/],
    ['a directory without <status>.html pages', () => pagesDir({ 'index.html': '<p>home</p>' }), /: no <status>\.html file \(such as 503\.html\) in it$/],
    ['a page over 64 KiB', () => pagesDir({ '503.html': 'x'.repeat(64 * 1024 + 1) }), /: 503\.html is 65537 bytes, over the limit of 65536$/],
    ['a page with template actions other than {{ .Message }}', () => pagesDir({ '503.html': '{{ if .Message }}x{{ end }}' }), /: 503\.html: unsupported template action \{\{ if \.Message \}\}; only \{\{ \.Message \}\} is supported$/],
  ])('refuses %s and leaves the service as it was', async (_case, makeDir, message) => {
    const [serving, next] = [await switchableBackend(), await switchableBackend()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([serving.address], ['--host', 'app.test', '--name', 'web'])
    const dir = makeDir()

    const refused = await proxy.cli(['deploy', next.address, '--host', 'app.test', '--name', 'web', '--error-pages', dir])
    expect(refused.code).toBe(1)
    expect(errorLines(refused.stderr)).toEqual([expect.stringMatching(new RegExp(`^Error: cannot load error pages from ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))])
    expect(errorLines(refused.stderr)[0]).toMatch(message)
    expect((await request(proxy.port, { host: 'app.test' })).body).toBe(serving.name)
    const [service] = (await proxy.list()).services
    expect([service.targets.map((target) => target.address), service.errorPagesPath]).toEqual([[serving.address], undefined])
    expect(next.appRequests).toBe(0)
  })
})

describe('no healthy target', () => {
  it('answers 503 when every target of a service fails its health checks', async () => {
    const [a, b] = [await switchableBackend(), await switchableBackend()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([a.address, b.address], ['--host', 'app.test'])
    a.healthy = false
    b.healthy = false
    await waitUntil(async () => (await healthOf(proxy)).every((health) => health === 'unhealthy'), 5_000, 'both targets to fail their checks')

    const refused = await request(proxy.port, { host: 'app.test' })
    expect([refused.status, refused.body.includes('<title>503 — Service Temporarily Unavailable</title>')]).toEqual([503, true])
    expect([a.appRequests, b.appRequests]).toEqual([0, 0])

    a.healthy = true
    await waitUntil(async () => (await request(proxy.port, { host: 'app.test' })).body === a.name, 5_000, 'the healthy target to serve again')
  })

  it('still sends to the only target of a service that fails its health checks', async () => {
    const only = await switchableBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([only.address], ['--host', 'app.test'])
    only.healthy = false
    await waitUntil(async () => (await healthOf(proxy))[0] === 'unhealthy', 5_000, 'the target to fail its checks')

    const served = await request(proxy.port, { host: 'app.test' })
    expect([served.status, served.body]).toEqual([200, only.name])
  })
})
