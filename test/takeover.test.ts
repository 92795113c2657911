/**
 * Replacing the whole proxy, primary included: `mproxy upgrade` (the running primary starts its
 * successor and hands it the listening sockets) and a second `mproxy run` on the same state dir
 * (which binds alongside the running one and takes over). Real processes throughout; the new
 * primary an upgrade starts is not a child of the test, so it is found by `status` and stopped
 * by pid.
 */
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { ControlClient } from '../src/control/client'
import {
  PROXY_START_TIMEOUT_MS, PROXY_STOP_TIMEOUT_MS, type Load, type LoadResult, errorLines, expectAllServedBy, getBody, onCleanup,
  request, runCli, runLoad, startBackend, startProxy, waitUntil,
} from './helpers'

/** Clients of each kind (keep-alive, Connection: close) sending requests back to back. */
const CONCURRENCY = 8
/** Requests each load must complete before and after a step, so that it really runs across it. */
const STEP_REQUESTS = 100
/** Generous bound for a load test on a shared 2-core machine. */
const LOAD_TEST_TIMEOUT_MS = 90_000
/** The app keeps the request in flight this long, so that a deploy is still draining when the takeover starts. */
const SLOW_REQUEST_MS = 1_500
const HANDOVER_RETRY_ERROR = /^Error: mproxy is handing over to a new process \(pid \d+\); retry in a moment$/

describe('mproxy upgrade', () => {
  it(
    'replaces the primary and its workers under keep-alive and Connection: close load without a failed request',
    async () => {
      const backend = await startBackend()
      const old = await startProxy({ workers: 2 })
      await old.deploy([backend.address], ['--host', 'app.test'])
      const loads = [runLoad(old.port, { concurrency: CONCURRENCY, host: 'app.test' }), runLoad(old.port, { concurrency: CONCURRENCY, host: 'app.test', newConnections: true })]
      await moreRequests(loads)

      const upgrade = await old.cli(['upgrade'])
      expect(upgrade.stderr).toBe('')
      expect(upgrade.code).toBe(0)
      const successor = (await old.status()).pid
      onCleanup(() => stopPid(successor))
      expect(successor).not.toBe(old.proc.pid)
      expect(upgrade.stdout).toContain(`upgraded: mproxy pid ${successor} serves now`)
      expect(await old.exited).toBe(0)
      await moreRequests(loads)
      const [keepAlive, close] = await Promise.all(loads.map((load) => load.stop()))

      report('mproxy upgrade', { keepAlive, close })
      expectAllServedBy(keepAlive, [backend])
      expectAllServedBy(close, [backend])
      expect(isAlive(old.proc.pid!)).toBe(false)
      expect(old.logs.some((line) => line.msg === `took over from pid ${old.proc.pid}` && Number(line.pid) === old.proc.pid)).toBe(true)
      // The new primary answers the CLI, with the state it took over.
      const next = await startBackend()
      await old.deploy([next.address], ['--host', 'next.test'])
      expect((await old.list()).services.map((service) => [service.name, service.targets.map((t) => t.address)])).toEqual([
        ['app.test', [backend.address]], ['next.test', [next.address]],
      ])
      expect(await getBody(old.port, { host: 'next.test' })).toBe(next.name)
    },
    LOAD_TEST_TIMEOUT_MS,
  )

  it('runs on SIGUSR2 too (systemctl reload)', async () => {
    const backend = await startBackend()
    const old = await startProxy({ workers: 1 })
    await old.deploy([backend.address])

    old.proc.kill('SIGUSR2')
    const successor = await waitUntil(async () => {
      const { pid } = await old.status()
      return pid !== old.proc.pid ? pid : undefined
    }, PROXY_START_TIMEOUT_MS, 'a new primary')
    onCleanup(() => stopPid(successor))

    expect(await old.exited).toBe(0)
    expect(await getBody(old.port)).toBe(backend.name)
  })

  it('fails with one line, the old primary serving on, when the new one cannot take over', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const old = await startProxy({ workers: 1 })
    await old.deploy([a.address])
    // The old primary cannot save its state for the handover, so the new one gives up.
    const stateFile = path.join(old.stateDir, 'state.json')
    fs.rmSync(stateFile)
    fs.mkdirSync(path.join(stateFile, 'in-the-way'), { recursive: true })

    const upgrade = await old.cli(['upgrade'])

    expect(upgrade.code).toBe(1)
    expect(errorLines(upgrade.stderr)).toEqual([
      `Error: the new mproxy (pid ${/started a new mproxy \(pid (\d+)\)/.exec(upgrade.stdout)?.[1]}) exited (code 1) before taking over (its error is in the log); mproxy (pid ${old.proc.pid}) keeps serving`,
    ])
    expect((await old.status()).pid).toBe(old.proc.pid)
    expect(await getBody(old.port)).toBe(a.name)
    fs.rmSync(stateFile, { recursive: true })
    await old.deploy([b.address])
    expect(await getBody(old.port)).toBe(b.name)
  })
})

describe('a second mproxy run on the same state dir', () => {
  it(
    'takes over under Connection: close load (no failed request with net.ipv4.tcp_migrate_req=1)',
    async () => {
      const migrating = await enableMigrateReq()
      const backend = await startBackend()
      const old = await startProxy({ workers: 2 })
      await old.deploy([backend.address])
      const load = runLoad(old.port, { concurrency: 2 * CONCURRENCY, newConnections: true })
      await moreRequests([load])

      const next = await startProxy({ workers: 2, stateDir: old.stateDir })
      expect(next.port).toBe(old.port)
      expect(next.logs.some((line) => line.msg === `taking over from pid ${old.proc.pid}`)).toBe(true)
      expect(next.logs.some((line) => line.msg === `took over from pid ${old.proc.pid}`)).toBe(true)
      expect(await old.exited).toBe(0)
      expect((await next.status()).pid).toBe(next.proc.pid)
      await moreRequests([load])
      const result = await load.stop()

      report(`second mproxy run, tcp_migrate_req=${migrating ? 1 : 0}`, { close: result })
      expect([...result.statuses.keys()]).toEqual([200])
      if (migrating) expectAllServedBy(result, [backend])
      expect(await next.list()).toMatchObject({ services: [{ name: 'default', targets: [{ address: backend.address }] }] })
    },
    LOAD_TEST_TIMEOUT_MS,
  )

  it('lets a deploy already running finish first, and the new primary has it', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const old = await startProxy({ workers: 1 })
    await old.deploy([a.address])
    const slow = request(old.port, { path: `/slow?ms=${SLOW_REQUEST_MS}` })
    await waitUntil(() => a.appRequests === 1, undefined, 'the slow request to reach the app')
    // Switches at once, then drains the slow request.
    const deploy = old.deploy([b.address])
    await old.waitForLog((line) => line.msg === 'switched')

    const next = await startProxy({ workers: 1, stateDir: old.stateDir })

    expect((await deploy).code).toBe(0)
    expect((await slow).status).toBe(200)
    const order = ['deploy finished', `handing over to pid ${next.proc.pid}`].map((msg) => old.logs.findIndex((line) => line.msg === msg))
    expect(order[0]).toBeGreaterThanOrEqual(0)
    expect(order[1]).toBeGreaterThan(order[0])
    expect((await next.list()).services[0].targets.map((target) => target.address)).toEqual([b.address])
    expect(await getBody(next.port)).toBe(b.name)
  })
})

describe('a takeover that does not complete', () => {
  it('refuses changes with a one-line retry error while prepared, and resumes them when the new process goes away', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const old = await startProxy({ workers: 1 })
    await old.deploy([a.address])
    // This test plays the new primary, holding the takeover's connection open.
    const lease = await new ControlClient(old.stateDir).prepare({ pid: process.pid, version: 'test' })
    onCleanup(() => lease.release())
    expect(lease.answer).toMatchObject({ pid: old.proc.pid, httpPort: old.port })

    for (const args of [['deploy', b.address], ['remove', 'default'], ['reload'], ['upgrade']]) {
      const refused = await old.cli(args)
      expect(refused.code).toBe(1)
      expect(errorLines(refused.stderr)).toEqual([expect.stringMatching(HANDOVER_RETRY_ERROR)])
    }
    // Nothing changed, nothing half-applied; reads and traffic go on.
    expect((await old.list()).services.map((service) => service.targets.map((target) => target.address))).toEqual([[a.address]])
    expect(await getBody(old.port)).toBe(a.name)

    lease.release()
    await old.waitForLog((line) => line.msg === `handover to pid ${process.pid} abandoned: serving as before`)
    await old.deploy([b.address])
    expect(await getBody(old.port)).toBe(b.name)
  })

  it('leaves the old proxy serving and taking deploys when the new process cannot listen', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const old = await startProxy({ workers: 1 })
    await old.deploy([a.address])
    const taken = net.createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    onCleanup(() => taken.close())
    const port = (taken.address() as net.AddressInfo).port

    const next = await runCli(['run', '--http-port', String(port), '--https-port', '0', '--workers', '1'], { stateDir: old.stateDir, timeoutMs: PROXY_START_TIMEOUT_MS })

    expect(next.code).toBe(1)
    expect(errorLines(next.stderr)).toEqual([`Error: cannot listen on HTTP port ${port}: address already in use (another proxy or web server?)`])
    expect(next.stdout).toContain(`taking over from pid ${old.proc.pid}`)
    await old.waitForLog((line) => /^handover to pid \d+ abandoned: serving as before$/.test(line.msg ?? ''))
    expect((await old.status()).pid).toBe(old.proc.pid)
    expect(await getBody(old.port)).toBe(a.name)
    await old.deploy([b.address])
    expect(await getBody(old.port)).toBe(b.name)
  })
})

/** Waits until each load has completed STEP_REQUESTS more requests. */
async function moreRequests(loads: Load[]): Promise<void> {
  await Promise.all(loads.map((load) => {
    const target = load.snapshot().ok + STEP_REQUESTS
    return waitUntil(() => load.snapshot().ok >= target, 20_000, `${STEP_REQUESTS} more requests`)
  }))
}

function report(what: string, results: Record<string, LoadResult>): void {
  const parts = Object.entries(results).map(([kind, r]) => `${kind}: ${r.ok} served, ${r.failed} failed ${JSON.stringify(Object.fromEntries(r.errorCodes))}`)
  console.log(`${what} under load: ${parts.join('; ')}`)
}

/** Whether `pid` is a live process; a zombie nobody reaps counts as gone. */
function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2)[0])
  } catch {
    return false
  }
}

/** Stops a proxy that is not a child of the test: SIGTERM, then SIGKILL if it lingers. */
async function stopPid(pid: number): Promise<void> {
  if (!isAlive(pid)) return
  process.kill(pid, 'SIGTERM')
  await waitUntil(() => !isAlive(pid), PROXY_STOP_TIMEOUT_MS, `pid ${pid} to exit`).catch(() => process.kill(pid, 'SIGKILL'))
}

/** Sets net.ipv4.tcp_migrate_req=1 for the test when it can (restored after); false when it cannot. */
async function enableMigrateReq(): Promise<boolean> {
  const file = '/proc/sys/net/ipv4/tcp_migrate_req'
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : undefined
  if (before === undefined) return false
  if (before === '1') return true
  try {
    await promisify(execFile)('sysctl', ['-w', 'net.ipv4.tcp_migrate_req=1'])
  } catch {
    return false
  }
  onCleanup(() => promisify(execFile)('sysctl', ['-w', `net.ipv4.tcp_migrate_req=${before}`]))
  return true
}
