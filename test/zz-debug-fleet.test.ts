import { delayMs, getBody, startBackend, startProxy, startRedis, FAST_HEALTH_FLAGS, type Proxy } from './helpers'

for (let i = 0; i < 8; i++) {
it('debug: after Redis came back empty ' + i, async () => {
  const redis = await startRedis()
  const [a, b] = [await startBackend(), await startBackend()]
  const start = (name: string) => startProxy({ workers: 1, args: ['--redis-url', redis.url, '--node-name', name] })
  const [n1, n2] = await Promise.all([start('n1'), start('n2')])
  await delayMs(1500)
  await n1.deploy([a.address])
  const t0 = Date.now()
  await redis.stop()
  await delayMs(1000)
  await redis.restart()
  await Promise.any([n1, n2].map((node) => node.waitForLog((l) => l.msg === 'redis was empty: wrote back the state this node serves', 10000)))
  await Promise.all([n1, n2].map((node) => node.waitForLog((l) => l.msg === 'redis reconnected', 10000)))
  const r = await n1.cli(['deploy', b.address, ...FAST_HEALTH_FLAGS], { timeoutMs: 25000 })
  const t1 = Date.now(); let served = ''
  while (Date.now() - t1 < 5000 && served !== b.name) { served = await getBody(n2.port).catch(String); await delayMs(50) }
  if (r.code !== 0 || served !== b.name) {
    console.log('deploy', r.code, r.stdout, r.stderr, Date.now() - t0, 'n2 serves', served, 'b', b.name)
    const dump = (p: Proxy, n: string) => console.log(n + '\n' + p.logs.filter((l) => l.msg !== "request").map((l) => JSON.stringify(l)).join('\n') + '\nstderr:' + p.stderr())
    dump(n1, 'n1'); dump(n2, 'n2')
    throw new Error('failed')
  }
}, 80000)
}
