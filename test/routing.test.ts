import { errorLines, request, startBackend, startProxy } from './helpers'

describe('host routing', () => {
  it.each([
    ['the exact host', 'app.test'],
    ['upper case', 'APP.Test'],
    ['a port in the Host header', 'app.test:8080'],
  ])('matches an exact host written with %s (%j)', async (_case, hostHeader) => {
    const app = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([app.address], ['--host', 'app.test'])

    const res = await request(proxy.port, { host: hostHeader })

    expect(res).toMatchObject({ status: 200, body: app.name })
  })

  it('matches a one-label wildcard, and an exact host before it', async () => {
    const [wild, api] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([wild.address], ['--host', '*.example.test', '--name', 'wild'])
    await proxy.deploy([api.address], ['--host', 'api.example.test'])

    const answers = await Promise.all(
      ['www.example.test', 'WWW.example.test:81', 'api.example.test', 'a.b.example.test', 'example.test'].map(async (host) => {
        const res = await request(proxy.port, { host })
        return [host, res.status === 200 ? res.body : res.status]
      }),
    )

    expect(answers).toEqual([
      ['www.example.test', wild.name],
      ['WWW.example.test:81', wild.name],
      ['api.example.test', api.name],
      ['a.b.example.test', 404],
      ['example.test', 404],
    ])
  })

  it('sends unmatched hosts to the service without hosts', async () => {
    const [fallback, app] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([fallback.address])
    await proxy.deploy([app.address], ['--host', 'app.test'])

    expect((await request(proxy.port, { host: 'anything.test' })).body).toBe(fallback.name)
    expect((await request(proxy.port, { host: 'app.test' })).body).toBe(app.name)
    expect((await proxy.list()).services.map((s) => s.name).sort()).toEqual(['app.test', 'default'])
  })

  it('answers 404 with a small HTML page when no service matches', async () => {
    const app = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    expect((await request(proxy.port, { host: 'app.test' })).status).toBe(404)
    await proxy.deploy([app.address], ['--host', 'app.test'])

    const res = await request(proxy.port, { host: 'other.test' })

    expect(res.status).toBe(404)
    expect(res.headers['content-type']).toMatch(/text\/html/)
    expect(res.body).toMatch(/404|not found/i)
    expect(app.appRequests).toBe(0)
  })

  it('refuses a host that another service owns', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([a.address], ['--name', 'a', '--host', 'x.test'])
    const before = await proxy.list()

    const result = await proxy.cli(['deploy', b.address, '--name', 'b', '--host', 'x.test', '--health-check-interval', '100ms'])

    expect(result.code).toBe(1)
    const lines = errorLines(result.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/x\.test/)
    expect(await proxy.list()).toEqual(before)
    expect((await request(proxy.port, { host: 'x.test' })).body).toBe(a.name)
    expect(b.appRequests).toBe(0)
  })

  it('lists services with their hosts, targets and health', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([a.address], ['--host', 'a.test', '--host', 'www.a.test'])
    await proxy.deploy([b.address], ['--name', 'bee', '--host', 'b.test'])

    const { services } = await proxy.list()
    const text = await proxy.cli(['list'])

    expect(services.map((s) => ({ name: s.name, hosts: [...s.hosts].sort(), targets: s.targets.map(({ address, health, inflight }) => ({ address, health, inflight })) })).sort((x, y) => x.name.localeCompare(y.name))).toEqual([
      { name: 'a.test', hosts: ['a.test', 'www.a.test'], targets: [{ address: a.address, health: 'healthy', inflight: 0 }] },
      { name: 'bee', hosts: ['b.test'], targets: [{ address: b.address, health: 'healthy', inflight: 0 }] },
    ])
    expect(text.code).toBe(0)
    for (const word of ['a.test', 'bee', a.address, b.address]) expect(text.stdout).toContain(word)
  })

  it.each([
    ['its name', ['remove', 'web']],
    ['one of its hosts', ['remove', '--host', 'www.web.test']],
  ])('removes a service by %s', async (_case, args) => {
    const [web, other] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([web.address], ['--name', 'web', '--host', 'web.test', '--host', 'www.web.test'])
    await proxy.deploy([other.address], ['--host', 'other.test'])

    const result = await proxy.cli(args)

    expect(result.code).toBe(0)
    expect((await request(proxy.port, { host: 'web.test' })).status).toBe(404)
    expect((await request(proxy.port, { host: 'other.test' })).body).toBe(other.name)
    expect((await proxy.list()).services.map((s) => s.name)).toEqual(['other.test'])
  })
})
