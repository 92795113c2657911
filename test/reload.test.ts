import { getBody, startBackend, startProxy } from './helpers'

// Reload under load is proven in zero-downtime.test.ts.
describe('reload', () => {
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
  it('takes its port, workers and state dir from HTTP_PORT, MPROXY_WORKERS and MPROXY_STATE_DIR', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ envOnly: true, env: { MPROXY_WORKERS: '1' } })
    expect(proxy.proc.spawnargs.slice(2)).toEqual(['run'])
    expect((await proxy.status()).workers).toBe(1)
    expect((await proxy.deploy([backend.address])).code).toBe(0)
    expect(await getBody(proxy.port)).toBe(backend.name)
  })
})
