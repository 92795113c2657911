/**
 * Supervisor in-process, with fake cluster Workers and jest's fake timers: how it rolls a
 * reload, which exits it replaces, when it gives up, and who gets route tables. The same
 * behaviour with real worker processes is covered by reload*.test.ts and lifecycle.test.ts.
 */
import { ReloadFailedError, WorkerCrashLoopError } from '../src/errors'
import type { RouteTable } from '../src/ipc/messages'
import type { WorkerConfig } from '../src/server-options'
import { Supervisor } from '../src/primary/workers/supervisor'
import { DEFAULT_WORKER_TIMEOUTS } from '../src/primary/workers/worker-handle'
import { FakeWorker } from './helpers/fake-worker'

jest.mock('../src/lib/logger', () => ({ ...jest.requireActual('../src/lib/logger'), log: jest.fn() }))

const DRAIN_TIMEOUT_MS = 1_000
/** Longer than any respawn delay, and than the crash loop window. */
const LONG_WAIT_MS = 60_000
const TABLE: RouteTable = { version: 1, services: [], certificates: [], acmeThumbprint: '', acmeTlsChallenges: [] }
/** Unused: the fakes read no environment. */
const WORKER_CONFIG: WorkerConfig = { trustedProxies: [], accessLog: false, responseIdleTimeoutMs: 1_000, shutdownTimeoutMs: 1_000, metrics: false, ticketKeys: '' }

interface Running {
  supervisor: Supervisor
  /** Every worker forked so far, in order. */
  forked: FakeWorker[]
  onCrashLoop: jest.Mock
}

/** A supervisor whose `workers` workers have all started. */
async function runningSupervisor(workers: number): Promise<Running> {
  const forked: FakeWorker[] = []
  const onCrashLoop = jest.fn()
  const supervisor = new Supervisor({
    workers, httpPort: 0, httpsPort: 0, workerConfig: WORKER_CONFIG, debug: false, onCrashLoop,
    fork: () => {
      const worker = new FakeWorker()
      forked.push(worker)
      return worker.asWorker
    },
  })
  const started = supervisor.start(TABLE)
  // Slot 0 starts alone; the others are forked once it listens.
  for (let slot = 0; slot < workers; slot++) {
    await settle()
    forked[slot].start()
  }
  await started
  return { supervisor, forked, onCrashLoop }
}

/** Lets pending promise callbacks run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

const pidsOf = (workers: FakeWorker[]): number[] => workers.map((w) => w.process.pid)

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] })
})

afterEach(() => {
  jest.useRealTimers()
})

describe('Supervisor', () => {
  it('reloads one worker at a time: an old worker stops only once its replacement serves', async () => {
    const { supervisor, forked } = await runningSupervisor(2)
    const [old0, old1] = forked

    const reload = supervisor.reload(DRAIN_TIMEOUT_MS)
    await settle()
    expect(forked).toHaveLength(3)
    expect(old0.sentOf('shutdown')).toEqual([])
    forked[2].start()
    await settle()
    expect(old0.sentOf('shutdown')).toEqual([{ mproxy: 1, type: 'shutdown', timeoutMs: DRAIN_TIMEOUT_MS }])
    expect(forked).toHaveLength(3)

    old0.exit(0)
    await settle()
    expect(forked).toHaveLength(4)
    forked[3].start()
    await settle()
    old1.exit(0)
    await reload
    expect(supervisor.workerPids).toEqual(pidsOf(forked.slice(2)))
  })

  it('still sends every new table to workers being stopped', async () => {
    const { supervisor, forked } = await runningSupervisor(1)
    const [old] = forked
    const reload = supervisor.reload(DRAIN_TIMEOUT_MS)
    await settle()
    forked[1].start()
    await settle()
    expect(supervisor.workerPids).toEqual(pidsOf([forked[1]]))

    const published = supervisor.publish({ ...TABLE, version: 2 })
    expect(old.sentOf('routes').map((m) => m.table.version)).toEqual([1, 2])
    for (const worker of forked) worker.applyRoutes()
    await published
    old.exit(0)
    await reload
  })

  it('sends a table published while a worker starts only once it is online, after its listen orders', async () => {
    const forked: FakeWorker[] = []
    const supervisor = new Supervisor({
      workers: 1, httpPort: 0, httpsPort: 0, workerConfig: WORKER_CONFIG, debug: false, onCrashLoop: jest.fn(),
      fork: () => {
        const worker = new FakeWorker()
        forked.push(worker)
        return worker.asWorker
      },
    })
    const started = supervisor.start(TABLE)
    await settle()
    // A certificate got ready (say) before the first worker came online.
    await supervisor.publish({ ...TABLE, version: 2 })
    expect(forked[0].sent).toEqual([])

    forked[0].start()
    await started
    expect(forked[0].sent.map((m) => (m.type === 'routes' ? `routes ${m.table.version}` : m.type))).toEqual(['listen', 'listen', 'routes 2'])
  })

  it('stops a reload at the first new worker that cannot start, keeps every old worker, and counts no crash', async () => {
    const { supervisor, forked, onCrashLoop } = await runningSupervisor(2)
    const old = forked.slice()

    // More failed reloads than the crash loop limit: none of them is a crash.
    for (let attempt = 0; attempt < 6; attempt++) {
      const reload = supervisor.reload(DRAIN_TIMEOUT_MS)
      await settle()
      const fresh = forked[forked.length - 1]
      fresh.online()
      fresh.reply({ mproxy: 1, type: 'listen-failed', error: 'SyntaxError: Unexpected token' })
      fresh.exit(1)
      await expect(reload).rejects.toThrow(ReloadFailedError)
      await expect(reload).rejects.toThrow(/could not start: SyntaxError: Unexpected token \(0 of 2 workers replaced/)
    }
    jest.advanceTimersByTime(LONG_WAIT_MS)
    expect(forked).toHaveLength(2 + 6)
    expect(onCrashLoop).not.toHaveBeenCalled()
    expect(supervisor.workerPids).toEqual(pidsOf(old))
    for (const worker of old) expect(worker.sentOf('shutdown')).toEqual([])
  })

  it('replaces a worker that exits unexpectedly, after the respawn delay', async () => {
    const { supervisor, forked } = await runningSupervisor(2)

    forked[0].exit(1)
    expect(supervisor.workerPids).toEqual(pidsOf([forked[1]]))
    jest.advanceTimersByTime(99)
    expect(forked).toHaveLength(2)
    jest.advanceTimersByTime(1)
    expect(forked).toHaveLength(3)
    forked[2].start()
    expect(supervisor.workerPids).toEqual(pidsOf([forked[1], forked[2]]))
  })

  it('kills and replaces a worker that does not apply a table in time', async () => {
    const { supervisor, forked } = await runningSupervisor(1)

    const published = supervisor.publish({ ...TABLE, version: 2 })
    jest.advanceTimersByTime(DEFAULT_WORKER_TIMEOUTS.ackMs)
    expect(forked[0].kills).toEqual(['SIGKILL'])
    await published
    forked[0].exit(null, 'SIGKILL')
    jest.advanceTimersByTime(LONG_WAIT_MS)
    expect(forked).toHaveLength(2)
  })

  it('gives up when workers crash more often than the crash loop limit, and replaces none after', async () => {
    const { forked, onCrashLoop } = await runningSupervisor(1)

    for (let crash = 0; crash < 5; crash++) {
      forked[forked.length - 1].exit(1)
      jest.advanceTimersByTime(5_000)
    }
    expect(forked).toHaveLength(6)
    expect(onCrashLoop).not.toHaveBeenCalled()
    forked[5].exit(1)
    expect(onCrashLoop).toHaveBeenCalledWith(expect.any(WorkerCrashLoopError))
    jest.advanceTimersByTime(LONG_WAIT_MS)
    expect(forked).toHaveLength(6)
  })

  it('stops every worker on shutdown and replaces none of them', async () => {
    const { supervisor, forked, onCrashLoop } = await runningSupervisor(2)

    const shutdown = supervisor.shutdown(DRAIN_TIMEOUT_MS)
    for (const worker of forked) {
      expect(worker.sentOf('shutdown')).toEqual([{ mproxy: 1, type: 'shutdown', timeoutMs: DRAIN_TIMEOUT_MS }])
      worker.reply({ mproxy: 1, type: 'stopped-accepting' })
      worker.exit(0)
    }
    await shutdown
    jest.advanceTimersByTime(LONG_WAIT_MS)
    expect(forked).toHaveLength(2)
    expect(onCrashLoop).not.toHaveBeenCalled()
  })

  it('sums in-flight counts over the live workers and says when they change', async () => {
    const { supervisor, forked } = await runningSupervisor(2)
    const listener = jest.fn()
    supervisor.onCounts(listener)

    forked[0].reply({ mproxy: 1, type: 'inflight', inflight: { 'web:3000': 2 } })
    forked[1].reply({ mproxy: 1, type: 'inflight', inflight: { 'web:3000': 3, 'api:4000': 1 } })
    expect(supervisor.inflight('web:3000')).toBe(5)
    expect(listener).toHaveBeenCalledTimes(2)
    forked[1].exit(1)
    expect(supervisor.inflight('web:3000')).toBe(2)
    expect(supervisor.inflight('api:4000')).toBe(0)
    expect(listener).toHaveBeenCalledTimes(3)
  })
})
