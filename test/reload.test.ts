import { getBody, runLoad, startBackend, startProxy, waitUntil } from './helpers'

const CONCURRENCY = 16
const WARM_UP_REQUESTS = 100
const RELOADS = 3
const RELOAD_TEST_TIMEOUT_MS = 90_000

describe('reload', () => {
  it(
    `replaces every worker ${RELOADS} times under ${CONCURRENCY} keep-alive clients with no failed request`,
    async () => {
      const backend = await startBackend()
      const proxy = await startProxy({ workers: 2 })
      await proxy.deploy([backend.address])
      const before = (await proxy.status()).workerPids
      const load = runLoad(proxy.port, { concurrency: CONCURRENCY })
      await waitUntil(() => load.snapshot().ok >= WARM_UP_REQUESTS, 10_000, 'load to warm up')

      for (let i = 0; i < RELOADS; i++) {
        const result = await proxy.cli(['reload'])
        expect(result.code).toBe(0)
        expect(result.stdout).toContain('reloaded 2 workers')
      }
      const result = await load.stop()

      expect(result.errors).toEqual([])
      expect(result.failed).toBe(0)
      const after = (await proxy.status()).workerPids
      expect(after).toHaveLength(2)
      expect(after.filter((pid) => before.includes(pid))).toEqual([])
    },
    RELOAD_TEST_TIMEOUT_MS,
  )

  it('reloads on SIGHUP and keeps routing', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address])
    proxy.proc.kill('SIGHUP')
    await proxy.waitForLog((line) => line.msg === 'workers reloaded', 20_000)
    expect(await getBody(proxy.port)).toBe(backend.name)
  })
})

describe('run configured by the environment only (as the Docker entrypoint runs it)', () => {
  it('reads the port and worker count from HTTP_PORT and MPROXY_WORKERS', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: null, httpPort: null, env: { HTTP_PORT: '0', MPROXY_WORKERS: '1' } })
    expect((await proxy.status()).workers).toBe(1)
    expect((await proxy.deploy([backend.address])).code).toBe(0)
    expect(await getBody(proxy.port)).toBe(backend.name)
  })
})
