/**
 * Read targets and writer affinity, against real processes: GET and HEAD go to the read
 * targets, everything else to the targets (writers); a write gets a `kamal-writer` cookie that
 * sends that client's reads to the writers until it expires. Then health, WebSockets, deploy
 * refusals and failures, list, restart, drain, and the kamal-proxy dialect.
 */
import type http from 'node:http'
import type { ServiceStatus } from '../src/control/protocol'
import {
  REFUSED_TARGET, defaultHandler, errorLines, kamalHost, mproxyList, openUpgrade, request, startBackend, startProxy, succeeded, timed, waitUntil,
  type Backend, type Proxy, type Response,
} from './helpers'

/** GETs sent to see where reads go: enough for every worker to round-robin over two readers. */
const READS = 10
/** The slow read in flight across a redeploy: long enough that the deploy's CLI starts and switches while it runs. */
const SLOW_READ_MS = 3_000
/** Deploy timeout of deploys expected to fail. */
const FAILING_DEPLOY_TIMEOUT = '1s'
/** Short writer affinity, to see a cookie expire within a test. */
const SHORT_AFFINITY_MS = 500
/** How much later than the deploy CLI's exit a response it waited for may still be seen here. */
const EXIT_SLACK_MS = 200
const WRITER_COOKIE = /^kamal-writer=(\d+); Path=\/; Expires=([^;]+); HttpOnly$/

/**
 * The default backend, plus: `/set-cookie` sets the app's own cookie, `/no-affinity` answers
 * `X-Writer-Affinity: false`, `/affinity` answers `X-Writer-Affinity: true`.
 */
function appHandler(req: http.IncomingMessage, res: http.ServerResponse, backend: Backend): void {
  const url = new URL(req.url ?? '/', 'http://backend')
  if (url.pathname === '/set-cookie') {
    res.setHeader('set-cookie', 'app=1; Path=/')
    res.end(backend.name)
  } else if (url.pathname === '/no-affinity') {
    res.setHeader('x-writer-affinity', 'false')
    res.end(backend.name)
  } else if (url.pathname === '/affinity') {
    res.setHeader('x-writer-affinity', 'true')
    res.end(backend.name)
  } else {
    defaultHandler(req, res, backend)
  }
}

const startApp = (name: string) => startBackend(appHandler, { name })

/** The `kamal-writer` Set-Cookie values of a response. */
function writerCookies(res: Response): string[] {
  return (res.headers['set-cookie'] ?? []).filter((cookie) => cookie.startsWith('kamal-writer='))
}

/** Which backend answered each of `n` fresh-connection requests. */
async function servedBy(proxy: Proxy, n: number, opts: { method?: string; path?: string; cookie?: string } = {}): Promise<Map<string, number>> {
  const bodies = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const res = await request(proxy.port, { method: opts.method, path: opts.path, headers: opts.cookie ? { cookie: opts.cookie } : {} })
    expect([opts.method ?? 'GET', res.status]).toEqual([opts.method ?? 'GET', 200])
    bodies.set(res.body, (bodies.get(res.body) ?? 0) + 1)
  }
  return bodies
}

async function onlyService(proxy: Proxy): Promise<ServiceStatus> {
  const { services } = await proxy.list()
  expect(services).toHaveLength(1)
  return services[0]
}

/** `[address, slot, health]` of each target, sorted by address. */
function slots(service: ServiceStatus): Array<[string, string, string]> {
  return service.targets.map((t): [string, string, string] => [t.address, t.slot, t.health]).sort((a, b) => a[0].localeCompare(b[0]))
}

const sorted = (rows: Array<[string, string, string]>) => [...rows].sort((a, b) => a[0].localeCompare(b[0]))

describe('read targets', () => {
  it('sends GET and HEAD to the read targets, round-robin, and every other method to the writer', async () => {
    const [writer, r1, r2] = [await startApp('writer'), await startApp('reader-1'), await startApp('reader-2')]
    const proxy = await startProxy({ workers: 2 })
    await proxy.deploy([writer.address], ['--read-target', r1.address, '--read-target', r2.address])

    const reads = await servedBy(proxy, READS)
    expect([...reads.keys()].sort()).toEqual(['reader-1', 'reader-2'])
    expect((reads.get('reader-1') ?? 0) + (reads.get('reader-2') ?? 0)).toBe(READS)

    const before = { writer: writer.appRequests, readers: r1.appRequests + r2.appRequests }
    const head = await request(proxy.port, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect({ writer: writer.appRequests, readers: r1.appRequests + r2.appRequests }).toEqual({ writer: before.writer, readers: before.readers + 1 })

    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      expect([method, await servedBy(proxy, 2, { method })]).toEqual([method, new Map([['writer', 2]])])
    }
  })

  it('gives a write the kamal-writer cookie next to the app\'s own, and a read none', async () => {
    const [writer, reader] = [await startApp('writer'), await startApp('reader')]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([writer.address], ['--read-target', reader.address, '--writer-affinity-timeout', '2s'])

    const sentAt = Date.now()
    const write = await request(proxy.port, { method: 'POST', path: '/set-cookie' })
    const answeredAt = Date.now()
    expect([write.status, write.body]).toEqual([200, 'writer'])
    expect(write.headers['set-cookie']).toContain('app=1; Path=/')
    const cookies = writerCookies(write)
    expect(cookies).toHaveLength(1)
    const [, expiry, expires] = WRITER_COOKIE.exec(cookies[0]) ?? []
    expect(cookies[0]).toMatch(WRITER_COOKIE)
    expect(Number(expiry)).toBeGreaterThanOrEqual(sentAt + 2_000)
    expect(Number(expiry)).toBeLessThanOrEqual(answeredAt + 2_000)
    expect(expires).toBe(new Date(Number(expiry) + 1_000).toUTCString())

    for (const method of ['GET', 'HEAD']) {
      const read = await request(proxy.port, { method, path: '/set-cookie' })
      expect([method, read.status, read.headers['set-cookie']]).toEqual([method, 200, ['app=1; Path=/']])
    }
    expect((await request(proxy.port)).headers['set-cookie']).toBeUndefined()
  })

  it('sends reads with a live kamal-writer cookie to the writer, and with an expired one to the readers', async () => {
    const [writer, reader] = [await startApp('writer'), await startApp('reader')]
    const proxy = await startProxy({ workers: 2 })
    await proxy.deploy([writer.address], ['--read-target', reader.address, '--writer-affinity-timeout', `${SHORT_AFFINITY_MS}ms`])

    expect(await servedBy(proxy, 4, { cookie: `theme=dark; kamal-writer=${Date.now() + 60_000}; b=2` })).toEqual(new Map([['writer', 4]]))
    expect(await servedBy(proxy, 4, { cookie: `theme=dark; kamal-writer=${Date.now() - 1_000}` })).toEqual(new Map([['reader', 4]]))
    expect(await servedBy(proxy, 4, { cookie: `xkamal-writer=${Date.now() + 60_000}` })).toEqual(new Map([['reader', 4]]))

    // Read your own write: the cookie a POST got sends the next read to the writer until it expires.
    const write = await request(proxy.port, { method: 'POST' })
    const cookie = (writerCookies(write)[0] ?? '').split(';')[0]
    expect(cookie).toMatch(/^kamal-writer=\d+$/)
    const expiry = Number(cookie.split('=')[1])
    const read = await request(proxy.port, { headers: { cookie } })
    // Unless the machine was slow enough for the cookie to expire already.
    if (Date.now() < expiry - 50) expect(read.body).toBe('writer')
    await waitUntil(() => Date.now() > expiry, SHORT_AFFINITY_MS * 4, 'the cookie to expire')
    expect(await servedBy(proxy, 2, { cookie })).toEqual(new Map([['reader', 2]]))
  })

  it('leaves out the cookie when the app answers X-Writer-Affinity: false, and strips that header', async () => {
    const [writer, reader] = [await startApp('writer'), await startApp('reader')]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([writer.address], ['--read-target', reader.address])

    const declined = await request(proxy.port, { method: 'POST', path: '/no-affinity' })
    expect([declined.status, declined.body]).toEqual([200, 'writer'])
    expect(writerCookies(declined)).toEqual([])
    expect(declined.headers['x-writer-affinity']).toBeUndefined()

    const accepted = await request(proxy.port, { method: 'POST', path: '/affinity' })
    expect(writerCookies(accepted)).toHaveLength(1)
    expect(accepted.headers['x-writer-affinity']).toBeUndefined()

    const read = await request(proxy.port, { path: '/no-affinity' })
    expect([read.body, read.headers['x-writer-affinity']]).toEqual(['reader', undefined])
  })

  it('sets no cookie with --writer-affinity-timeout 0, nor for a service without read targets', async () => {
    const [writer, reader, plain] = [await startApp('writer'), await startApp('reader'), await startApp('plain')]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([writer.address], ['--host', 'split.test', '--read-target', reader.address, '--writer-affinity-timeout', '0'])
    await proxy.deploy([plain.address], ['--host', 'plain.test'])

    const write = await request(proxy.port, { host: 'split.test', method: 'POST' })
    expect([write.body, writerCookies(write)]).toEqual(['writer', []])
    expect((await request(proxy.port, { host: 'split.test' })).body).toBe('reader')
    // With affinity off, a cookie (even a live one) changes nothing.
    expect((await request(proxy.port, { host: 'split.test', headers: { cookie: `kamal-writer=${Date.now() + 60_000}` } })).body).toBe('reader')

    const plainWrite = await request(proxy.port, { host: 'plain.test', method: 'POST' })
    expect([plainWrite.body, writerCookies(plainWrite)]).toEqual(['plain', []])

    const { services } = await proxy.list()
    expect(Object.fromEntries(services.map((s) => [s.name, s.writerAffinityTimeoutMs]))).toEqual({ 'plain.test': 1_000, 'split.test': 0 })
  })

  it('sends reads to the healthy readers only, and to the writer once none is healthy, with no failed request', async () => {
    const [writer, r1, r2] = [await startApp('writer'), await startApp('reader-1'), await startApp('reader-2')]
    const proxy = await startProxy({ workers: 2 })
    await proxy.deploy([writer.address], ['--read-target', r1.address, '--read-target', r2.address])
    expect([...(await servedBy(proxy, READS)).keys()].sort()).toEqual(['reader-1', 'reader-2'])

    const healthOf = async (reader: Backend) => (await onlyService(proxy)).targets.find((t) => t.address === reader.address)?.health
    await r1.close()
    await waitUntil(async () => (await healthOf(r1)) === 'unhealthy', undefined, 'reader-1 to be unhealthy')
    expect(await servedBy(proxy, READS)).toEqual(new Map([['reader-2', READS]]))

    await r2.close()
    await waitUntil(async () => (await healthOf(r2)) === 'unhealthy', undefined, 'reader-2 to be unhealthy')
    expect(await servedBy(proxy, READS)).toEqual(new Map([['writer', READS]]))
    expect(await servedBy(proxy, 2, { method: 'POST' })).toEqual(new Map([['writer', 2]]))
  })

  it('sends WebSocket upgrades to the writer by default, and to a reader with --read-target-websockets', async () => {
    const [writer, reader] = [await startApp('writer'), await startApp('reader')]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([writer.address], ['--host', 'ws.test', '--read-target', reader.address])
    await proxy.deploy([writer.address], ['--host', 'ws-read.test', '--read-target', reader.address, '--read-target-websockets'])
    const counts = () => ({ writer: writer.appRequests, reader: reader.appRequests })

    let before = counts()
    const toWriter = await openUpgrade(proxy.port, { host: 'ws.test' })
    expect(await toWriter.echo('hello')).toBe('hello')
    expect(counts()).toEqual({ writer: before.writer + 1, reader: before.reader })

    before = counts()
    const toReader = await openUpgrade(proxy.port, { host: 'ws-read.test' })
    expect(await toReader.echo('hello')).toBe('hello')
    expect(counts()).toEqual({ writer: before.writer, reader: before.reader + 1 })

    const { services } = await proxy.list()
    expect(Object.fromEntries(services.map((s) => [s.name, s.readTargetWebSockets]))).toEqual({ 'ws-read.test': true, 'ws.test': false })
  })

  it('refuses an address given both as a target and as a read target, changing nothing', async () => {
    const [writer, other] = [await startApp('writer'), await startApp('other')]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([writer.address])
    const before = await proxy.list()

    const result = await proxy.cli(['deploy', other.address, '--read-target', other.address, '--health-check-interval', '100ms'])

    expect(result.code).not.toBe(0)
    const lines = errorLines(result.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/both a target and a read target/)
    expect(await proxy.list()).toEqual(before)
    expect((await request(proxy.port)).body).toBe('writer')
  })

  it('fails a deploy whose read target never turns healthy, leaving the previous routing as it was', async () => {
    const [w1, r1, w2] = [await startApp('writer-1'), await startApp('reader-1'), await startApp('writer-2')]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([w1.address], ['--read-target', r1.address])
    const before = await proxy.list()

    const result = await proxy.cli(['deploy', w2.address, '--read-target', REFUSED_TARGET, '--deploy-timeout', FAILING_DEPLOY_TIMEOUT, '--health-check-interval', '100ms'])

    expect(result.code).toBe(1)
    const lines = errorLines(result.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/healthy/)
    expect(await proxy.list()).toEqual(before)
    expect((await request(proxy.port)).body).toBe('reader-1')
    expect((await request(proxy.port, { method: 'POST' })).body).toBe('writer-1')
  })

  it('lists read targets with the reader slot, their health and in-flight count, and the service\'s read options', async () => {
    const [writer, r1, r2] = [await startApp('writer'), await startApp('reader-1'), await startApp('reader-2')]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([writer.address], ['--read-target', `${r1.address},${r2.address}`])

    const service = await onlyService(proxy)
    expect(slots(service)).toEqual(sorted([[writer.address, 'active', 'healthy'], [r1.address, 'reader', 'healthy'], [r2.address, 'reader', 'healthy']]))
    expect(service.targets.map((t) => t.inflight)).toEqual([0, 0, 0])
    expect([service.writerAffinityTimeoutMs, service.readTargetWebSockets]).toEqual([1_000, false])

    // A slow read in flight on a reader counts there.
    const slow = request(proxy.port, { path: '/slow?ms=1500' })
    await waitUntil(() => r1.appRequests + r2.appRequests >= 1, undefined, 'the slow read to reach a reader')
    const during = await onlyService(proxy)
    const readerInflight = during.targets.filter((t) => t.slot === 'reader').reduce((sum, t) => sum + t.inflight, 0)
    expect(readerInflight).toBe(1)
    expect(during.targets.find((t) => t.slot === 'active')?.inflight).toBe(0)
    expect((await slow).status).toBe(200)

    const text = await proxy.cli(['list'])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(`${r1.address} (reader)`)
    expect(text.stdout).toContain(`${r2.address} (reader)`)
    expect(text.stdout).not.toContain(`${writer.address} (reader)`)
  })

  it('keeps read targets and their options through a restart', async () => {
    const [writer, reader] = [await startApp('writer'), await startApp('reader')]
    const first = await startProxy({ workers: 1 })
    await first.deploy([writer.address], ['--read-target', reader.address, '--writer-affinity-timeout', '3s', '--read-target-websockets'])
    await first.stop()

    const second = await startProxy({ workers: 1, stateDir: first.stateDir })
    await waitUntil(async () => (await onlyService(second)).targets.every((t) => t.health === 'healthy'), undefined, 'targets healthy after the restart')
    const service = await onlyService(second)
    expect(slots(service)).toEqual(sorted([[writer.address, 'active', 'healthy'], [reader.address, 'reader', 'healthy']]))
    expect([service.writerAffinityTimeoutMs, service.readTargetWebSockets]).toEqual([3_000, true])
    expect((await request(second.port)).body).toBe('reader')
    const write = await request(second.port, { method: 'POST' })
    expect(write.body).toBe('writer')
    const [, expiry] = WRITER_COOKIE.exec(writerCookies(write)[0] ?? '') ?? []
    expect(Number(expiry) - Date.now()).toBeGreaterThan(2_000)
    const before = reader.appRequests
    const socket = await openUpgrade(second.port)
    expect(await socket.echo('hi')).toBe('hi')
    expect(reader.appRequests).toBe(before + 1)
  })

  it('drains a replaced read target: a slow read in flight on it completes after the switch', async () => {
    const [writer, oldReader, newReader] = [await startApp('writer'), await startApp('old-reader'), await startApp('new-reader')]
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([writer.address], ['--read-target', oldReader.address])

    const slow = timed(request(proxy.port, { path: `/slow?ms=${SLOW_READ_MS}` }))
    await waitUntil(() => oldReader.appRequests >= 1, undefined, 'the slow read to reach the old reader')
    const deployed = await proxy.deploy([writer.address], ['--read-target', newReader.address])
    const deployedAt = Date.now()

    expect(deployed.stdout).toMatch(new RegExp(`drained .*${oldReader.address.replace(/\./g, '\\.')}`))
    const settled = await slow
    expect(settled.error).toBeUndefined()
    expect([settled.value?.status, settled.value?.body]).toEqual([200, 'old-reader'])
    // The deploy waited for it (give or take the CLI's exit reaching this process).
    expect(settled.at).toBeLessThanOrEqual(deployedAt + EXIT_SLACK_MS)
    expect(await servedBy(proxy, 3)).toEqual(new Map([['new-reader', 3]]))
    expect(slots(await onlyService(proxy))).toEqual(sorted([[writer.address, 'active', 'healthy'], [newReader.address, 'reader', 'healthy']]))
  })
})

describe('read targets through kamal-proxy', () => {
  it('deploys with --read-target, --writer-affinity-timeout and --read-target-websockets as kamal-proxy does', async () => {
    const host = kamalHost()
    const proxy = await host.run()
    const [writer, r1, r2] = [await startApp('writer'), await startApp('reader-1'), await startApp('reader-2')]

    succeeded(await host.kamal([
      'deploy', 'app-web', `--target=${writer.address}`, `--read-target=${r1.address}`,
      '--writer-affinity-timeout=2s', '--read-target-websockets', '--health-check-interval=100ms',
    ]))
    let [service] = (await mproxyList(host.dataDir)).services
    expect(slots(service)).toEqual(sorted([[writer.address, 'active', 'healthy'], [r1.address, 'reader', 'healthy']]))
    expect([service.writerAffinityTimeoutMs, service.readTargetWebSockets]).toEqual([2_000, true])
    expect((await request(proxy.port)).body).toBe('reader-1')
    const write = await request(proxy.port, { method: 'POST' })
    expect(write.body).toBe('writer')
    expect(writerCookies(write)[0]).toMatch(WRITER_COOKIE)
    expect((await request(proxy.port, { headers: { cookie: `kamal-writer=${Date.now() + 60_000}` } })).body).toBe('writer')

    // A comma-separated list, given as a separate argument; the defaults come back.
    succeeded(await host.kamal([
      'deploy', 'app-web', `--target=${writer.address}`, '--read-target', `${r1.address},${r2.address}`, '--health-check-interval=100ms',
    ]))
    ;[service] = (await mproxyList(host.dataDir)).services
    expect(slots(service)).toEqual(sorted([[writer.address, 'active', 'healthy'], [r1.address, 'reader', 'healthy'], [r2.address, 'reader', 'healthy']]))
    expect([service.writerAffinityTimeoutMs, service.readTargetWebSockets]).toEqual([1_000, false])
    expect([...(await servedBy(proxy, READS)).keys()].sort()).toEqual(['reader-1', 'reader-2'])
  })

  it('refuses read targets in the rollout slot with one line, changing nothing', async () => {
    const host = kamalHost()
    const proxy = await host.run()
    const [writer, canary, reader] = [await startApp('writer'), await startApp('canary'), await startApp('reader')]
    succeeded(await host.kamal(['deploy', 'app-web', `--target=${writer.address}`, '--health-check-interval=100ms']))
    const before = await mproxyList(host.dataDir)

    const result = await host.kamal(['rollout', 'deploy', 'app-web', `--target=${canary.address}`, `--read-target=${reader.address}`])

    expect(result.code).not.toBe(0)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(/^Error: .*read.target.*\n$/i)
    expect(await mproxyList(host.dataDir)).toEqual(before)
    expect((await request(proxy.port)).body).toBe('writer')
  })
})
