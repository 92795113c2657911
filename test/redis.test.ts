import { getBody, makeStateDir, startBackend, startProxy, startRedis } from './helpers'

describe('state in Redis', () => {
  it('restores every service on an empty state dir and serves at once', async () => {
    const redis = await startRedis()
    const backend = await startBackend()
    const first = await startProxy({ workers: 1, args: ['--redis-url', redis.url] })
    await first.deploy([backend.address], ['--host', 'app.test'])
    expect(await first.stop()).toBe(0)

    const second = await startProxy({ workers: 1, stateDir: makeStateDir(), args: ['--redis-url', redis.url] })
    expect(await getBody(second.port, { host: 'app.test' })).toBe(backend.name)
    expect((await second.status()).state).toMatch(/^redis unix:.* prefix mproxy: \(copy in .*state.json\)$/)
  })

  it('keeps fleets with different --redis-prefix apart', async () => {
    const redis = await startRedis()
    const backend = await startBackend()
    const blue = await startProxy({ workers: 1, args: ['--redis-url', redis.url, '--redis-prefix', 'blue:'] })
    await blue.deploy([backend.address], ['--host', 'blue.test'])

    const green = await startProxy({ workers: 1, stateDir: makeStateDir(), args: ['--redis-url', redis.url, '--redis-prefix', 'green:'] })
    expect((await green.list()).services).toEqual([])
  })

  it('refuses to start when Redis is down and there is no local copy, naming the URL', async () => {
    const redis = await startRedis()
    await redis.stop()
    const proxy = await startProxy({ workers: 1, args: ['--redis-url', redis.url] }).catch((err: Error) => err)
    expect(proxy).toBeInstanceOf(Error)
    expect(String(proxy)).toContain(`Error: cannot connect to redis ${redis.url}`)
  })

  it('starts from the local copy when Redis is down, and keeps serving when Redis goes away', async () => {
    const redis = await startRedis()
    const backend = await startBackend()
    const first = await startProxy({ workers: 1, args: ['--redis-url', redis.url] })
    await first.deploy([backend.address])
    expect(await first.stop()).toBe(0)
    await redis.stop()

    const second = await startProxy({ workers: 1, stateDir: first.stateDir, args: ['--redis-url', redis.url] })
    await second.waitForLog((line) => line.msg === 'redis unavailable at start: serving the copy in the local file')
    expect(await getBody(second.port)).toBe(backend.name)

    // Deploys fail at once with the reason, and change nothing, while Redis is away.
    const other = await startBackend()
    const failed = await second.cli(['deploy', other.address, '--health-check-interval', '100ms'])
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(/^Error: cannot reach redis unix:/)
    expect(await getBody(second.port)).toBe(backend.name)

    // Back again (empty): the next deploy saves there.
    await redis.restart()
    // The subscriber has a connection of its own: wait for the one that saves.
    await second.waitForLog((line) => line.msg === 'redis reconnected' && !String(line.connection).endsWith(':changes'), 10_000)
    await second.deploy([other.address])
    expect(await getBody(second.port)).toBe(other.name)
  })
})
