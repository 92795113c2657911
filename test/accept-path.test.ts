import { execFile } from 'node:child_process'
import * as net from 'node:net'
import { promisify } from 'node:util'
import {
  type Backend, type LogLine, type Proxy, collectBodies, errorLines, expectAllServedBy, onCleanup, runLoad, startBackend, startProxy, waitUntil,
} from './helpers'

/** Clients each sending requests back to back, every request on a new connection. */
const CONCURRENCY = 20
/** Requests that must complete before (and between) the steps, so the load really runs across them. */
const STEP_REQUESTS = 100
/** Generous bound for a load test on a shared 2-core machine. */
const LOAD_TEST_TIMEOUT_MS = 90_000
/** Low enough that a few hundred idle connections exhaust a worker. */
const FILE_LIMIT = 128
/** How long the proxy may take to serve again once descriptors are free. */
const RECOVERY_TIMEOUT_MS = 5_000
/** `status` fails for 5 s after the last report; allow for the reports' 1 s cadence and a slow CLI. */
const STATUS_CLEAR_TIMEOUT_MS = 10_000

describe('accept path', () => {
  it(
    `drops no Connection: close request while reload rolls the workers twice and a deploy switches targets`,
    async () => {
      const [a, b] = [await startBackend(), await startBackend()]
      const proxy = await startProxy({ workers: 2 })
      await proxy.deploy([a.address])
      const socketsBefore = await listeningSockets(proxy.port)
      expect(socketsBefore.size).toBe(2)
      const load = runLoad(proxy.port, { concurrency: CONCURRENCY, newConnections: true })
      const moreRequests = async (n = STEP_REQUESTS) => {
        const target = load.snapshot().ok + n
        await waitUntil(() => load.snapshot().ok >= target, 20_000, `${n} more requests`)
      }
      await moreRequests()

      for (let i = 0; i < 2; i++) {
        const reload = await proxy.cli(['reload'])
        expect(reload.code).toBe(0)
        await moreRequests()
      }
      await proxy.deploy([b.address])
      await moreRequests()
      const result = await load.stop()

      expectAllServedBy(result, [a, b])
      expect(result.errorCodes).toEqual(new Map())
      // The same sockets serve throughout, now held by the fourth generation of workers.
      const socketsAfter = await listeningSockets(proxy.port)
      expect([...socketsAfter.keys()].sort()).toEqual([...socketsBefore.keys()].sort())
      expect(new Set([...socketsAfter.values()].flat())).toEqual(new Set([proxy.proc.pid, ...currentWorkerPids(proxy)]))
    },
    LOAD_TEST_TIMEOUT_MS,
  )

  it.each([
    ['killed (SIGKILL)', (_proxy: Proxy, victim: number) => process.kill(victim, 'SIGKILL')],
    // A worker that does not apply the deploy's table within 5 s is killed and replaced.
    ['stuck (SIGSTOP, then a deploy)', async (proxy: Proxy, victim: number, next: Backend) => {
      process.kill(victim, 'SIGSTOP')
      await proxy.deploy([next.address])
    }],
  ])(
    'hands the socket of a worker %s to its replacement: connections queued on it are served, none refused',
    async (how, replace) => {
      const [backend, next] = [await startBackend(), await startBackend()]
      const proxy = await startProxy({ workers: 2 })
      await proxy.deploy([backend.address])
      const socketsBefore = await listeningSockets(proxy.port)
      const load = runLoad(proxy.port, { concurrency: CONCURRENCY, newConnections: true })
      await waitUntil(() => load.snapshot().ok >= STEP_REQUESTS, 20_000, 'load to warm up')

      const victim = currentWorkerPids(proxy)[0]
      onCleanup(() => killIfAlive(victim))
      await replace(proxy, victim, next)
      const replacement = await proxy.waitForLog((line) => line.msg === 'worker restarted', 20_000)
      const okAfterRestart = load.snapshot().ok
      await waitUntil(() => load.snapshot().ok >= okAfterRestart + STEP_REQUESTS, 20_000, 'load after the restart')
      const result = await load.stop()

      // Requests the killed worker had accepted die with it; the rest, queued ones included, are served.
      console.log(`worker ${victim} ${how} under ${CONCURRENCY} Connection: close clients: ` +
        `${result.ok} requests served, ${result.failed} failed (${JSON.stringify(Object.fromEntries(result.errorCodes))})`)
      expect(result.errorCodes.get('ECONNREFUSED')).toBeUndefined()
      expect(result.failed).toBeLessThanOrEqual(CONCURRENCY)
      expect([...result.statuses.keys()]).toEqual([200])
      const socketsAfter = await listeningSockets(proxy.port)
      expect([...socketsAfter.keys()].sort()).toEqual([...socketsBefore.keys()].sort())
      expect([...socketsAfter.values()].flat()).toContain(Number(replacement.pid))
      expect([...socketsAfter.values()].flat()).not.toContain(victim)
    },
    LOAD_TEST_TIMEOUT_MS,
  )

  it(
    'reports running out of file descriptors in status, and serves again within seconds once they are free',
    async () => {
      const backend = await startBackend()
      const proxy = await startProxy({ workers: 2, fileLimit: FILE_LIMIT })
      await proxy.deploy([backend.address])
      const idle: net.Socket[] = []
      onCleanup(() => idle.forEach((socket) => socket.destroy()))

      // Idle connections hold a descriptor each in the worker that accepted them.
      const failing = await waitUntil(async () => {
        for (let i = 0; i < FILE_LIMIT / 2; i++) idle.push(openIdleConnection(proxy.port))
        const status = await proxy.cli(['status'])
        return status.code === 1 ? status : undefined
      }, 30_000, 'status to report the accept error')

      expect(failing.stdout).toMatch(/^mproxy .* running/)
      expect(errorLines(failing.stderr)).toEqual([
        expect.stringMatching(/^Error: worker \d+ \(pid \d+\) cannot accept connections: EMFILE \(too many open files\), last seen \d+\.\ds ago(; worker .*)?$/),
      ])
      const reported = Number(/\(pid (\d+)\)/.exec(failing.stderr)?.[1])
      expect(currentWorkerPids(proxy)).toContain(reported)
      expect(proxy.logs.some((line) => line.msg === 'cannot accept connections' && line.error === 'EMFILE (too many open files)')).toBe(true)

      idle.forEach((socket) => socket.destroy())
      const freedAt = Date.now()
      // Fresh connections spread over both workers (by hash): every one of them must be served.
      await waitUntil(async () => (await collectBodies(proxy.port, 10)).get(backend.name) === 10, RECOVERY_TIMEOUT_MS, 'requests to be served again')
      console.log(`serving again ${Date.now() - freedAt} ms after the idle connections closed`)
      await waitUntil(async () => (await proxy.cli(['status'])).code === 0, STATUS_CLEAR_TIMEOUT_MS, 'status to exit 0 again')
      // The same workers, listening all along: nothing was restarted.
      expect(proxy.logs.filter((line) => line.msg === 'worker exited unexpectedly')).toEqual([])
    },
    LOAD_TEST_TIMEOUT_MS,
  )
})

/** The pids of the workers started last in each slot, from the proxy's log. */
function currentWorkerPids(proxy: Proxy): number[] {
  const bySlot = new Map<number, number>()
  for (const line of proxy.logs.filter((l: LogLine) => l.msg === 'worker started')) bySlot.set(Number(line.slot), Number(line.pid))
  return [...bySlot.entries()].sort(([a], [b]) => a - b).map(([, pid]) => pid)
}

/** The TCP sockets listening on `port`, read back from the kernel: inode → pids holding a descriptor of it. */
async function listeningSockets(port: number): Promise<Map<string, number[]>> {
  const { stdout } = await promisify(execFile)('ss', ['-Hltnpe', `sport = :${port}`])
  const sockets = new Map<string, number[]>()
  for (const line of stdout.split('\n').filter(Boolean)) {
    const inode = /\bino:(\d+)/.exec(line)?.[1]
    if (inode) sockets.set(inode, [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))
  }
  return sockets
}

function killIfAlive(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // Already gone, as it should be.
  }
}

/** A connection that sends nothing; errors (a reset by the proxy) only end it. */
function openIdleConnection(port: number): net.Socket {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => socket.destroy())
  return socket
}
