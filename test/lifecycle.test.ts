import * as net from 'node:net'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  PROXY_START_TIMEOUT_MS,
  collectBodies,
  errorLines,
  getBody,
  makeStateDir,
  request,
  runCli,
  startBackend,
  startProxy,
  waitUntil,
} from './helpers'

describe('state persistence', () => {
  it('restarts into the last completed state after a SIGKILL in the middle of a deploy, and the next deploy works', async () => {
    let ready = false
    const a = await startBackend()
    const b = await startBackend((req, res) => {
      if (req.url === '/up' && !ready) res.statusCode = 503
      res.end(req.url === '/up' ? 'up' : 'b')
    })
    const first = await startProxy({ workers: 1 })
    await first.deploy([a.address], ['--host', 'app.test'])
    const stuck = first.cli(['deploy', b.address, '--host', 'app.test', '--health-check-interval', '100ms'])
    await waitUntil(() => b.requests >= 2, 5_000, 'the new target to be health-checked')

    expect(await first.stop('SIGKILL')).toBe(null)
    expect((await stuck).code).toBe(1)

    const second = await startProxy({ workers: 1, stateDir: first.stateDir })
    expect(await getBody(second.port, { host: 'app.test' })).toBe(a.name)
    expect((await second.list()).services.map((s) => s.targets.map((t) => t.address))).toEqual([[a.address]])
    ready = true
    await second.deploy([b.address], ['--host', 'app.test'])
    expect(await getBody(second.port, { host: 'app.test' })).toBe('b')
  })

  it('restores routes from state.json on restart, before taking traffic', async () => {
    const backend = await startBackend()
    const first = await startProxy({ workers: 1 })
    await first.deploy([backend.address], ['--host', 'app.test', '--target-timeout', '7s'])
    expect(await first.stop('SIGTERM')).toBe(0)

    const state = JSON.parse(fs.readFileSync(path.join(first.stateDir, 'state.json'), 'utf8'))
    expect(state).toMatchObject({ version: 1, services: [{ name: 'app.test', hosts: ['app.test'], targets: [backend.address] }] })

    const second = await startProxy({ workers: 2, stateDir: first.stateDir })
    // No waiting: the first request after "listening" must already be routed.
    const res = await request(second.port, { host: 'app.test' })

    expect(res).toMatchObject({ status: 200, body: backend.name })
    const { services } = await second.list()
    expect(services).toHaveLength(1)
    expect(services[0]).toMatchObject({ name: 'app.test', hosts: ['app.test'], targetTimeoutMs: 7_000 })
  })

  it.each([
    ['truncated JSON', '{"version":1,"services":['],
    ['an unknown version', '{"version":99,"services":[]}'],
    ['an invalid target', '{"version":1,"services":[{"name":"x","hosts":[],"targets":["nope"]}]}'],
    ['two services of one name', '{"version":1,"services":[{"name":"x","hosts":["a.test"],"targets":["web:1"]},{"name":"x","hosts":["b.test"],"targets":["web:2"]}]}'],
    ['two services with one host', '{"version":1,"services":[{"name":"x","hosts":["a.test"],"targets":["web:1"]},{"name":"y","hosts":["A.test"],"targets":["web:2"]}]}'],
    ['two default services', '{"version":1,"services":[{"name":"x","hosts":[],"targets":["web:1"]},{"name":"y","hosts":[],"targets":["web:2"]}]}'],
    ['a duration written as text', '{"version":1,"services":[{"name":"x","hosts":[],"targets":["web:3000"],"drainTimeoutMs":"30s"}]}'],
    ['a duration no timer holds', '{"version":1,"services":[{"name":"x","hosts":[],"targets":["web:3000"],"healthCheck":{"intervalMs":2160000000}}]}'],
  ])('refuses to start on a state file with %s, naming the file and leaving it untouched', async (_case, content) => {
    const stateDir = makeStateDir()
    const file = path.join(stateDir, 'state.json')
    fs.writeFileSync(file, content)

    const result = await runCli(['run', '--http-port', '0', '--https-port', '0', '--workers', '1'], {
      stateDir,
      timeoutMs: PROXY_START_TIMEOUT_MS,
    })

    expect(result.code).toBe(1)
    expect(`${result.stdout}\n${result.stderr}`).toContain(file)
    expect(errorLines(result.stderr)).toHaveLength(1)
    expect(fs.readFileSync(file, 'utf8')).toBe(content)
  })

  it('starts empty when there is no state file', async () => {
    const proxy = await startProxy({ workers: 1 })

    expect(await proxy.list()).toEqual({ services: [] })
    expect((await request(proxy.port)).status).toBe(404)
  })
})

describe('shutdown', () => {
  it('lets a request in flight finish on SIGTERM, refuses new connections, and exits 0', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 2 })
    await proxy.deploy([backend.address])
    const slow = request(proxy.port, { path: '/slow?ms=2500' })
    await waitUntil(() => backend.appRequests >= 1, undefined, 'the slow request to reach the backend')

    const exitCode = proxy.stop('SIGTERM')
    // "Stop accepting": new connections are refused (or, at the least, answered 503).
    await waitUntil(
      () => request(proxy.port, { timeoutMs: 1_000 }).then((res) => res.status === 503, () => true),
      2_000,
      'new requests to be refused',
    )

    expect(await slow).toMatchObject({ status: 200, body: backend.name })
    expect(await exitCode).toBe(0)
  })

  it('exits 0 on SIGINT', async () => {
    const proxy = await startProxy({ workers: 1 })

    expect(await proxy.stop('SIGINT')).toBe(0)
  })
})

describe('worker supervision', () => {
  it('replaces a killed worker, which gets the current routes', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 2 })
    await proxy.deploy([backend.address])
    const started = proxy.logs.filter((line) => line.msg === 'worker started')
    expect(started).toHaveLength(2)
    const victim = Number(started[0].pid)

    process.kill(victim, 'SIGKILL')
    const replacement = await proxy.waitForLog(
      (line) => line.msg === 'worker started' && !started.some((old) => old.pid === line.pid),
      10_000,
    )

    expect(Number(replacement.pid)).not.toBe(victim)
    await waitUntil(async () => (await getBody(proxy.port)) === backend.name, undefined, 'requests to work again')
    // Fresh connections are spread over both workers: all of them must know the route.
    expect(await collectBodies(proxy.port, 20)).toEqual(new Map([[backend.name, 20]]))
    expect((await proxy.status()).workers).toBe(2)
  })
})

describe('CLI without a running proxy', () => {
  it.each([
    ['list', ['list']],
    ['status', ['status']],
    ['deploy', ['deploy', '127.0.0.1:1']],
    ['remove', ['remove', 'web']],
    ['reload', ['reload']],
    ['upgrade', ['upgrade']],
  ])('%s exits 1 and says no mproxy is running', async (_case, args) => {
    const stateDir = makeStateDir()

    const result = await runCli(args, { stateDir })

    expect(result.code).toBe(1)
    const lines = errorLines(result.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/no mproxy is running/i)
    expect(result.stderr).toMatch(/mproxy run/)
  })

  it('finds the proxy through MPROXY_STATE_DIR', async () => {
    const proxy = await startProxy({ workers: 1 })

    const result = await runCli(['status'], { env: { MPROXY_STATE_DIR: proxy.stateDir } })

    expect(result.code).toBe(0)
  })
})

describe('configuration', () => {
  it.each([
    ['MPROXY_HTTP_PORT', { MPROXY_HTTP_PORT: '0' }],
    ['HTTP_PORT', { HTTP_PORT: '0' }],
  ])('reads the HTTP port from %s', async (_case, env) => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1, httpPort: null, env })
    await proxy.deploy([backend.address])

    expect(await getBody(proxy.port)).toBe(backend.name)
    expect((await proxy.status()).httpPort).toBe(proxy.port)
  })

  it('reads the worker count from MPROXY_WORKERS, and an explicit flag beats it', async () => {
    const fromEnv = await startProxy({ workers: null, env: { MPROXY_WORKERS: '1' } })
    const fromFlag = await startProxy({ workers: 2, env: { MPROXY_WORKERS: '1' } })

    expect((await fromEnv.status()).workers).toBe(1)
    expect((await fromFlag.status()).workers).toBe(2)
  })
})

describe('help and status', () => {
  it.each([
    ['help run', ['help', 'run']],
    ['run --help', ['run', '--help']],
  ])('%s lists every option with its default', async (_case, args) => {
    const result = await runCli(args)

    expect(result.code).toBe(0)
    expect(defaultOf(result.stdout, '--http-port')).toBe('80')
    expect(defaultOf(result.stdout, '--https-port')).toBe('443')
    for (const flag of ['--workers', '--state-dir', '--debug']) expect(defaultOf(result.stdout, flag)).toBeTruthy()
  })

  it('deploy --help lists the durations with their defaults', async () => {
    const result = await runCli(['deploy', '--help'])

    expect(result.code).toBe(0)
    const defaults = Object.fromEntries(
      ['--health-check-path', '--health-check-interval', '--health-check-timeout', '--deploy-timeout', '--drain-timeout', '--target-timeout'].map(
        (flag) => [flag, defaultOf(result.stdout, flag)],
      ),
    )
    expect(defaults).toEqual({
      '--health-check-path': '/up',
      '--health-check-interval': '1s',
      '--health-check-timeout': '5s',
      '--deploy-timeout': '30s',
      '--drain-timeout': '30s',
      '--target-timeout': '30s',
    })
  })

  it('status reports a running proxy in one line, and as JSON', async () => {
    const proxy = await startProxy({ workers: 2 })

    const text = await proxy.cli(['status'])
    const json = await proxy.status()

    expect(text.code).toBe(0)
    expect(text.stdout.trim().split('\n')).toHaveLength(1)
    expect(json).toMatchObject({ workers: 2, httpPort: proxy.port, pid: proxy.proc.pid, services: 0 })
  })

  it("status reports how late the primary's event loop ran, as JSON and in its line", async () => {
    const proxy = await startProxy({ workers: 1 })

    const text = await proxy.cli(['status'])
    const { eventLoopDelay } = await proxy.status()

    // What the numbers are is the benchmark's business (npm run bench:control); here, that they are there.
    expect(eventLoopDelay).toEqual({ p50Ms: expect.any(Number), p99Ms: expect.any(Number), maxMs: expect.any(Number) })
    expect(eventLoopDelay.p50Ms).toBeGreaterThanOrEqual(0)
    expect(eventLoopDelay.p50Ms).toBeLessThanOrEqual(eventLoopDelay.p99Ms)
    expect(eventLoopDelay.p99Ms).toBeLessThanOrEqual(eventLoopDelay.maxMs)
    expect(text.stdout).toMatch(/; event loop delay p50 \d+\.\d ms, p99 \d+\.\d ms, max \d+\.\d ms$/m)
  })

  it('status exits 1 once the proxy has stopped', async () => {
    const proxy = await startProxy({ workers: 1 })
    await proxy.stop()

    const result = await proxy.cli(['status'])

    expect(result.code).toBe(1)
    expect(errorLines(result.stderr)).toHaveLength(1)
  })
})

/** The `[default: X]` that oclif help shows for `flag` (help text wraps, so whitespace is collapsed). */
function defaultOf(help: string, flag: string): string | undefined {
  const text = help.replace(/\s+/g, ' ')
  const match = new RegExp(`${flag}[= ][^\\[]*\\[default: ([^;\\]]+)`).exec(text)
  return match?.[1].trim()
}

describe('run on a port that is taken', () => {
  it('exits 1 at once, saying which port and why', async () => {
    const taken = net.createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as net.AddressInfo).port
    try {
      const result = await runCli(['run', '--http-port', String(port), '--https-port', '0', '--workers', '1'], { stateDir: makeStateDir() })
      expect(result.code).toBe(1)
      expect(result.stderr.trim()).toBe(`Error: cannot listen on HTTP port ${port}: address already in use (another proxy or web server?)`)
    } finally {
      taken.close()
    }
  })
})

describe('a crash loop', () => {
  it('ends the primary with a clear error instead of respawning forever', async () => {
    const proxy = await startProxy({ workers: 1 })
    const killed = new Set<number>()
    // Kill every worker as soon as it starts, as a crashing build would.
    for (let i = 0; i < 10 && proxy.proc.exitCode === null; i++) {
      const started = await proxy.waitForLog((line) => line.msg === 'worker started' && !killed.has(Number(line.pid)), 10_000).catch(() => undefined)
      if (!started) break
      killed.add(Number(started.pid))
      try {
        process.kill(Number(started.pid), 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
    expect(await proxy.exited).toBe(1)
    expect(proxy.stderr()).toMatch(/^Error: workers crashed \d+ times within 30s; giving up$/m)
  }, 60_000)
})
