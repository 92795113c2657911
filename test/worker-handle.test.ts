/**
 * WorkerHandle in-process, with a fake cluster Worker and jest's fake timers: its states, and
 * that each of its timers (ready, route ack, stop) fires when it should and never after the
 * worker has moved on.
 */
import type { MetricJson, RouteTable } from '../src/ipc/messages'
import { log } from '../src/lib/logger'
import { certificatesKey } from '../src/primary/workers/table-delivery'
import { WorkerHandle, type WorkerEvents, type WorkerExit, type WorkerTimeouts } from '../src/primary/workers/worker-handle'
import { FakeWorker } from './helpers/fake-worker'

jest.mock('../src/lib/logger', () => ({ ...jest.requireActual('../src/lib/logger'), log: jest.fn() }))

const TIMEOUTS: WorkerTimeouts = { readyMs: 1_000, ackMs: 500, stopGraceMs: 200 }
const DRAIN_TIMEOUT_MS = 3_000
const CERTIFICATE = { hosts: ['a.test'], cert: 'CERT', key: 'KEY' }
const TABLE: RouteTable = { version: 1, services: [], certificates: [CERTIFICATE], acmeThumbprint: '', acmeTlsChallenges: [] }

interface Started {
  worker: FakeWorker
  handle: WorkerHandle
  exits: WorkerExit[]
  events: jest.Mocked<WorkerEvents>
}

function startHandle(options: { byReload?: boolean } = {}): Started {
  const worker = new FakeWorker()
  const exits: WorkerExit[] = []
  const events: jest.Mocked<WorkerEvents> = {
    onOnline: jest.fn(),
    onSocketBound: jest.fn(),
    onReady: jest.fn(),
    onAcceptError: jest.fn(),
    onCounts: jest.fn(),
    onFinalMetrics: jest.fn(),
    onExit: jest.fn((_handle, exit) => { exits.push(exit) }),
  }
  const handle = new WorkerHandle(worker.asWorker, { slot: 0, byReload: options.byReload ?? false, timeouts: TIMEOUTS, events })
  return { worker, handle, exits, events }
}

/** Whether `promise` has settled, once pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false
  promise.then(() => { done = true }, () => { done = true })
  await new Promise((resolve) => setImmediate(resolve))
  return done
}

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] })
  jest.mocked(log).mockClear()
})

afterEach(() => {
  jest.useRealTimers()
})

describe('WorkerHandle', () => {
  it('starts, serves once its worker reports ready, and logs each change of state', async () => {
    const { worker, handle, events } = startHandle()
    expect(handle.state).toBe('starting')

    worker.online()
    expect(events.onOnline).toHaveBeenCalledWith(handle)
    worker.ready()
    await expect(handle.ready).resolves.toBeUndefined()
    expect(handle.state).toBe('serving')
    expect(events.onReady).toHaveBeenCalledWith(handle, expect.objectContaining({ httpPort: 8080 }))

    void handle.stop(DRAIN_TIMEOUT_MS)
    worker.exit()
    expect(handle.state).toBe('exited')
    const changes = jest.mocked(log).mock.calls.filter(([, msg]) => msg === 'worker state changed').map(([, , fields]) => [fields?.from, fields?.to])
    expect(changes).toEqual([['starting', 'serving'], ['serving', 'stopping'], ['stopping', 'exited']])
  })

  it('kills a worker that does not listen within the ready timeout, and fails its start', async () => {
    const { worker, handle } = startHandle()

    jest.advanceTimersByTime(TIMEOUTS.readyMs - 1)
    expect(worker.kills).toEqual([])
    jest.advanceTimersByTime(1)
    expect(worker.kills).toEqual(['SIGKILL'])
    await expect(handle.ready).rejects.toThrow(`did not start listening within ${TIMEOUTS.readyMs} ms`)
  })

  it('ends the ready timer once the worker listens', () => {
    const { worker } = startHandle()

    worker.ready()
    jest.advanceTimersByTime(TIMEOUTS.readyMs * 10)
    expect(worker.kills).toEqual([])
  })

  it('fails the start of a worker that exits first with the reason it gave', async () => {
    const { worker, handle } = startHandle()

    worker.reply({ mproxy: 1, type: 'listen-failed', error: 'cannot listen on HTTP port 80: permission denied' })
    worker.exit(1)
    await expect(handle.ready).rejects.toThrow('cannot listen on HTTP port 80: permission denied')
  })

  it('resolves a table once applied, takes its counts, and ends its ack timer', async () => {
    const { worker, handle, events } = startHandle()
    worker.ready()

    const applied = handle.sendRoutes(TABLE, certificatesKey(TABLE))
    worker.applyRoutes({ 'web:3000': 2 })
    expect(await settled(applied)).toBe(true)
    expect(handle.inflight).toEqual({ 'web:3000': 2 })
    expect(events.onCounts).toHaveBeenCalled()
    jest.advanceTimersByTime(TIMEOUTS.ackMs * 10)
    expect(worker.kills).toEqual([])
  })

  it('kills a worker that does not apply a table within the ack timeout, and stops waiting for it', async () => {
    const { worker, handle } = startHandle()
    worker.ready()

    const applied = handle.sendRoutes(TABLE, certificatesKey(TABLE))
    jest.advanceTimersByTime(TIMEOUTS.ackMs - 1)
    expect(await settled(applied)).toBe(false)
    jest.advanceTimersByTime(1)
    expect(worker.kills).toEqual(['SIGKILL'])
    expect(await settled(applied)).toBe(true)
  })

  it('sends a table\'s certificates only to a worker that does not hold them yet', () => {
    const { worker, handle } = startHandle()
    const key = certificatesKey(TABLE)

    void handle.sendRoutes(TABLE, key)
    void handle.sendRoutes({ ...TABLE, version: 2 }, key)
    const [first, second] = worker.sentOf('routes')
    expect(first.table.certificates).toEqual([CERTIFICATE])
    expect(second.table.certificates).toBeUndefined()
  })

  it('stops by asking the worker to drain, and kills it only after the drain timeout and the grace', () => {
    const { worker, handle } = startHandle()
    worker.ready()

    void handle.stop(DRAIN_TIMEOUT_MS)
    void handle.stop(DRAIN_TIMEOUT_MS)
    expect(handle.state).toBe('stopping')
    expect(worker.sentOf('shutdown')).toEqual([{ mproxy: 1, type: 'shutdown', timeoutMs: DRAIN_TIMEOUT_MS }])
    jest.advanceTimersByTime(DRAIN_TIMEOUT_MS + TIMEOUTS.stopGraceMs - 1)
    expect(worker.kills).toEqual([])
    jest.advanceTimersByTime(1)
    expect(worker.kills).toEqual(['SIGKILL'])
  })

  it('still sends tables to a worker being stopped', () => {
    const { worker, handle } = startHandle()
    worker.ready()

    void handle.stop(DRAIN_TIMEOUT_MS)
    void handle.sendRoutes({ ...TABLE, version: 2 }, certificatesKey(TABLE))
    expect(worker.sentOf('routes').map((m) => m.table.version)).toEqual([2])
  })

  it('ends every timer when its worker exits, and settles whatever waited for it', async () => {
    const { worker, handle } = startHandle()
    const applied = handle.sendRoutes(TABLE, certificatesKey(TABLE))
    const stopped = handle.stop(DRAIN_TIMEOUT_MS)

    worker.exit(0)
    expect(await settled(applied)).toBe(true)
    expect(await settled(stopped)).toBe(true)
    expect(await settled(handle.stoppedAccepting)).toBe(true)
    jest.advanceTimersByTime(TIMEOUTS.readyMs + TIMEOUTS.ackMs + DRAIN_TIMEOUT_MS + TIMEOUTS.stopGraceMs)
    expect(worker.kills).toEqual([])
    expect(jest.getTimerCount()).toBe(0)
  })

  it.each<[string, boolean, { byReload: boolean; ready: boolean; stop: boolean }]>([
    ['a serving worker that dies', false, { byReload: false, ready: true, stop: false }],
    ['a starting worker that dies (first start or respawn)', false, { byReload: false, ready: false, stop: false }],
    ['a reload\'s new worker that dies before it listens', true, { byReload: true, ready: false, stop: false }],
    ['a reload\'s new worker that dies once it served', false, { byReload: true, ready: true, stop: false }],
    ['a worker that was told to stop', true, { byReload: false, ready: true, stop: true }],
    ['a worker told to stop while starting', true, { byReload: false, ready: false, stop: true }],
  ])('reports the exit of %s as expected (no crash): %p', (_case, expected, setup) => {
    const { worker, handle, exits } = startHandle({ byReload: setup.byReload })
    if (setup.ready) worker.ready()
    if (setup.stop) void handle.stop(DRAIN_TIMEOUT_MS)

    worker.exit(1)
    expect(exits).toEqual([{ code: 1, signal: null, expected }])
  })

  describe('metrics', () => {
    const METRICS_TIMEOUT_MS = 2_000
    const counters = (value: number): MetricJson[] => [{ name: 'mproxy_http_requests_total', help: '', type: 'counter', aggregator: 'sum', values: [{ value, labels: {} }] }]
    const answer = (worker: FakeWorker, value: number): void => {
      const [request] = worker.sentOf('collect-metrics').slice(-1)
      worker.reply({ mproxy: 1, type: 'metrics', ack: request.seq, metrics: counters(value) })
    }

    it('asks the worker and resolves with its answer, or its previous one when it takes too long', async () => {
      const { worker, handle } = startHandle()
      worker.start()

      const first = handle.collectMetrics(METRICS_TIMEOUT_MS)
      answer(worker, 1)
      await expect(first).resolves.toEqual(counters(1))
      const second = handle.collectMetrics(METRICS_TIMEOUT_MS)
      jest.advanceTimersByTime(METRICS_TIMEOUT_MS)
      await expect(second).resolves.toEqual(counters(1))
    })

    it('hands up the final counters once, after which the worker has no metrics of its own', async () => {
      const { worker, handle, events } = startHandle()
      worker.start()
      const pending = handle.collectMetrics(METRICS_TIMEOUT_MS)

      worker.reply({ mproxy: 1, type: 'final-metrics', metrics: counters(5) })
      await expect(pending).resolves.toBeUndefined()
      expect(handle.metricsFinal).toBe(true)
      await expect(handle.collectMetrics(METRICS_TIMEOUT_MS)).resolves.toBeUndefined()
      worker.exit()
      expect(events.onFinalMetrics).toHaveBeenCalledTimes(1)
      expect(events.onFinalMetrics).toHaveBeenCalledWith(handle, counters(5))
    })

    it('hands up the last answer of a worker that dies without its final counters', async () => {
      const { worker, handle, events } = startHandle()
      worker.start()
      const first = handle.collectMetrics(METRICS_TIMEOUT_MS)
      answer(worker, 7)
      await first

      worker.exit(1)
      expect(events.onFinalMetrics).toHaveBeenCalledWith(handle, counters(7))
    })
  })
})
