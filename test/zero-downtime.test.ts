import { collectBodies, expectAllServedBy, getBody, runLoad, startBackend, startProxy, waitUntil } from './helpers'

/** Concurrent keep-alive clients hammering the proxy during deploys. */
const CONCURRENCY = 16
const REDEPLOYS = 10
/** Requests that must complete before the first deploy, so the load is really running. */
const WARM_UP_REQUESTS = 100
/** Generous bound for the whole test: 10 deploys + load on a shared 2-core machine. */
const LOAD_TEST_TIMEOUT_MS = 90_000

describe('zero-downtime deploys', () => {
  it(
    `drops no request while the service is redeployed ${REDEPLOYS} times under ${CONCURRENCY} keep-alive clients`,
    async () => {
      const [a, b] = [await startBackend(), await startBackend()]
      const proxy = await startProxy({ workers: 2 })
      await proxy.deploy([a.address])
      const load = runLoad(proxy.port, { concurrency: CONCURRENCY })
      await waitUntil(() => load.snapshot().ok >= WARM_UP_REQUESTS, 10_000, 'load to warm up')

      for (let i = 0; i < REDEPLOYS; i++) {
        const next = i % 2 === 0 ? b : a
        await proxy.deploy([next.address])
        // Once deploy has returned, every new request goes to the new target.
        expect(await collectBodies(proxy.port, 4)).toEqual(new Map([[next.name, 4]]))
      }
      const result = await load.stop()

      expectAllServedBy(result, [a, b])
    },
    LOAD_TEST_TIMEOUT_MS,
  )

  it(
    'lets the caller stop the old instance the moment deploy returns',
    async () => {
      let current = await startBackend()
      const proxy = await startProxy({ workers: 2 })
      await proxy.deploy([current.address])
      const load = runLoad(proxy.port, { concurrency: CONCURRENCY })
      await waitUntil(() => load.snapshot().ok >= WARM_UP_REQUESTS, 10_000, 'load to warm up')

      for (let i = 0; i < 5; i++) {
        const next = await startBackend()
        await proxy.deploy([next.address])
        // The deploy script's next step: stop the old instance, connections and all.
        await current.close()
        current = next
      }
      const result = await load.stop()

      expect(result.errors).toEqual([])
      expect(result.failed).toBe(0)
      expect(await getBody(proxy.port)).toBe(current.name)
    },
    LOAD_TEST_TIMEOUT_MS,
  )

  it(
    'rolls every worker on reload without dropping a request',
    async () => {
      const backend = await startBackend()
      const proxy = await startProxy({ workers: 2 })
      await proxy.deploy([backend.address])
      const pidsBefore = workerPids(proxy.logs)
      expect(pidsBefore.size).toBe(2)
      const load = runLoad(proxy.port, { concurrency: CONCURRENCY })
      await waitUntil(() => load.snapshot().ok >= WARM_UP_REQUESTS, 10_000, 'load to warm up')

      const reload = await proxy.cli(['reload'])
      expect(reload.code).toBe(0)
      await waitUntil(() => workerPids(proxy.logs).size >= 4, 20_000, 'two replacement workers')
      const okBefore = load.snapshot().ok
      await waitUntil(() => load.snapshot().ok >= okBefore + WARM_UP_REQUESTS, 10_000, 'load on the new workers')
      const result = await load.stop()

      expect(result.errors).toEqual([])
      expect(result.failed).toBe(0)
      await waitUntil(() => [...pidsBefore].every((pid) => !isAlive(pid)), 10_000, 'the old workers to exit')
      expect((await proxy.status()).workers).toBe(2)
    },
    LOAD_TEST_TIMEOUT_MS,
  )
})

function workerPids(logs: Array<Record<string, unknown>>): Set<number> {
  return new Set(logs.filter((line) => line.msg === 'worker started').map((line) => Number(line.pid)))
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
