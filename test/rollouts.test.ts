import { errorLines, request, startBackend, startProxy, startRedis, waitUntil, type Proxy } from './helpers'

/** Which backend answers a request carrying `kamal-rollout=<value>` (none: no cookie). */
async function servedBy(proxy: Proxy, value?: string): Promise<string> {
  const res = await request(proxy.port, { host: 'app.test', headers: value === undefined ? {} : { cookie: `theme=dark; kamal-rollout=${value}` } })
  return res.body
}

describe('rollouts', () => {
  it('sends the cookie values the split picks to the rollout targets, and the rest to the active ones', async () => {
    const [active, canary] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 2 })
    await proxy.deploy([active.address], ['--host', 'app.test'])

    const deployed = await proxy.cli(['rollout', 'deploy', 'app.test', canary.address])
    expect(deployed.code).toBe(0)
    expect(deployed.stdout).toMatch(new RegExp(`rollout targets of app.test are now ${canary.address}`))
    // No split yet: nobody goes to the rollout targets.
    expect(await servedBy(proxy, 'user-1')).toBe(active.name)

    await proxy.cli(['rollout', 'set', 'app.test', '--percent', '100'])
    expect(await servedBy(proxy, 'user-1')).toBe(canary.name)
    expect(await servedBy(proxy)).toBe(active.name)

    const set = await proxy.cli(['rollout', 'set', 'app.test', '--percent', '0', '--list', 'staff,beta'])
    expect(set.stdout).toMatch(/0% of kamal-rollout cookie values and cookie values staff, beta go to the rollout targets/)
    expect([await servedBy(proxy, 'staff'), await servedBy(proxy, 'beta'), await servedBy(proxy, 'user-1')]).toEqual([canary.name, canary.name, active.name])
    expect((await proxy.cli(['list'])).stdout).toContain(`${canary.address} (rollout 0% + staff,beta)`)

    await proxy.cli(['rollout', 'stop', 'app.test'])
    expect(await servedBy(proxy, 'staff')).toBe(active.name)
    expect((await proxy.list()).services[0].targets.map((t) => [t.address, t.slot])).toEqual([[active.address, 'active'], [canary.address, 'rollout']])
  })

  it('keeps the rollout slot through a deploy and a restart, and drains both slots on remove', async () => {
    const [one, two, canary] = [await startBackend(), await startBackend(), await startBackend()]
    const first = await startProxy({ workers: 1 })
    await first.deploy([one.address], ['--host', 'app.test'])
    await first.cli(['rollout', 'deploy', 'app.test', canary.address])
    await first.cli(['rollout', 'set', 'app.test', '--list', 'staff'])
    await first.deploy([two.address], ['--host', 'app.test'])
    expect([await servedBy(first), await servedBy(first, 'staff')]).toEqual([two.name, canary.name])
    await first.stop()

    const second = await startProxy({ workers: 1, stateDir: first.stateDir })
    expect([await servedBy(second), await servedBy(second, 'staff')]).toEqual([two.name, canary.name])
    const removed = await second.cli(['remove', 'app.test'])
    expect(removed.stdout).toMatch(new RegExp(`drained .*${canary.address}`))
  })

  it('refuses a split without rollout targets, an unknown service and a bad percentage, changing nothing', async () => {
    const active = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([active.address], ['--host', 'app.test'])

    const cases = await Promise.all([
      proxy.cli(['rollout', 'set', 'app.test', '--percent', '10']),
      proxy.cli(['rollout', 'deploy', 'nope', active.address]),
      proxy.cli(['rollout', 'set', 'app.test']),
    ])
    expect(cases.map((result) => errorLines(result.stderr))).toEqual([
      ['Error: app.test has no rollout targets: run mproxy rollout deploy app.test TARGET first'],
      ['Error: service nope not found'],
      ['Error: give --percent, --list, or both'],
    ])
    const canary = await startBackend()
    await proxy.cli(['rollout', 'deploy', 'app.test', canary.address])
    const percent = await proxy.cli(['rollout', 'set', 'app.test', '--percent', '150'])
    expect(errorLines(percent.stderr)).toEqual(['Error: invalid rollout percentage 150: must be a whole number from 0 to 100'])
    expect((await proxy.list()).services[0].rolloutSplit).toBeUndefined()
  })

  it('applies a rollout made through one node of a fleet on the others', async () => {
    const redis = await startRedis()
    const [active, canary] = [await startBackend(), await startBackend()]
    const nodes = await Promise.all(['n1', 'n2'].map((name) => startProxy({ workers: 1, args: ['--redis-url', redis.url, '--node-name', name] })))
    await nodes[0].deploy([active.address], ['--host', 'app.test'])
    await nodes[0].cli(['rollout', 'deploy', 'app.test', canary.address])
    await nodes[0].cli(['rollout', 'set', 'app.test', '--list', 'staff'])

    await waitUntil(async () => (await servedBy(nodes[1], 'staff')) === canary.name, 10_000, 'n2 to apply the rollout')
    expect(await servedBy(nodes[1])).toBe(active.name)
    await nodes[1].cli(['rollout', 'stop', 'app.test'])
    await waitUntil(async () => (await servedBy(nodes[0], 'staff')) === active.name, 10_000, 'n1 to apply the rollout stop')
  }, 60_000)
})
