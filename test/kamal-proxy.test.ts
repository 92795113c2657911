/**
 * `bin/kamal-proxy.js` as Kamal 2 drives it: `run` with HOME and KAMAL_PROXY_SOCKET in a
 * temporary directory, then the exact command lines Kamal sends (lib/kamal/commands/app/proxy.rb
 * and configuration/proxy.rb: `docker exec kamal-proxy kamal-proxy deploy app-web --target="<id>:80" ...`),
 * under load, then `kamal app maintenance`, `kamal app live` and `kamal app remove`; both dialects on one server; a takeover; the import of a kamal-proxy state.
 */
import { X509Certificate, createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import * as tls from 'node:tls'
import {
  kamalHost, mproxyList, request, runCli, runLoad, startBackend, startProxy, succeeded, waitUntil,
  type CliResult,
} from './helpers'

/** What Kamal adds to every app deploy by default (buffering on, three request headers logged). */
const KAMAL_DEFAULT_FLAGS = [
  '--deploy-timeout=30s', '--drain-timeout=30s', '--buffer-requests', '--buffer-responses',
  '--log-request-header=Cache-Control', '--log-request-header=Last-Modified', '--log-request-header=User-Agent',
]
/** Requests the load must complete after a step, so that it really runs across it. */
const STEP_REQUESTS = 100
const LOAD_TEST_TIMEOUT_MS = 90_000
const stripStyles = (text: string) => text.replace(/\x1b\[[\d;]*m/g, '')

const failed = (result: CliResult, message: string) => expect({ code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({ code: 1, stdout: '', stderr: `Error: ${message}\n` })

describe('kamal-proxy, as Kamal 2 drives it', () => {
  it(
    'deploys, redeploys twice under load with no failed request, rolls out, stops for maintenance, resumes and removes, answering as kamal-proxy does',
    async () => {
      const host = kamalHost()
      const proxy = await host.run()
      const [v1, v2, v3, canary] = [await startBackend(), await startBackend(), await startBackend(), await startBackend()]
      const kamalDeploy = (target: string) => host.kamal(['deploy', 'app-web', `--target=${target}`, ...KAMAL_DEFAULT_FLAGS])

      // kamal deploy
      succeeded(await kamalDeploy(v1.address))
      const load = runLoad(proxy.port, { concurrency: 4 })
      const served = (backend: { name: string }) => waitUntil(() => (load.snapshot().bodies.get(backend.name) ?? 0) >= STEP_REQUESTS, 20_000, `${STEP_REQUESTS} requests to ${backend.name}`)
      await served(v1)
      // kamal deploy, twice more, under load.
      succeeded(await kamalDeploy(v2.address))
      await served(v2)
      succeeded(await kamalDeploy(v3.address))
      await served(v3)
      const result = await load.stop()
      expect(result.errors).toEqual([])
      expect(result.failed).toBe(0)
      expect([...result.statuses.keys()]).toEqual([200])
      // Kamal's --log-request-header flags reach the access log.
      await proxy.waitForLog((line) => line.msg === 'request' && line.service === 'app-web' && 'req_user_agent' in line)

      const list = await host.kamal(['list'])
      expect(list.code).toBe(0)
      expect(stripStyles(list.stdout)).toBe([
        `Service  Host  Path  Target${' '.repeat(v3.address.length - 6)}  State    TLS  `,
        `app-web  *     /     ${v3.address}  running  no   `,
        '',
      ].join('\n'))
      expect(list.stdout).toContain('\x1b[1;34mapp-web\x1b[0m')

      // A rollout (kamal-proxy's commands; Kamal itself has none).
      succeeded(await host.kamal(['rollout', 'deploy', 'app-web', `--target=${canary.address}`]))
      succeeded(await host.kamal(['rollout', 'set', 'app-web', '--percent', '100']))
      expect((await request(proxy.port, { headers: { cookie: 'kamal-rollout=user-1' } })).body).toBe(canary.name)
      expect((await request(proxy.port)).body).toBe(v3.name)
      succeeded(await host.kamal(['rollout', 'stop', 'app-web']))
      expect((await request(proxy.port, { headers: { cookie: 'kamal-rollout=user-1' } })).body).toBe(v3.name)

      // kamal app maintenance --message "Back at <b>ten</b>": a 503 page with the message (escaped); the health path still answers 200.
      succeeded(await host.kamal(['stop', 'app-web', '--drain-timeout=30s', '--message=Back at <b>ten</b>']))
      const page = await request(proxy.port)
      expect(page.status).toBe(503)
      expect(page.body).toContain('Back at &lt;b&gt;ten&lt;/b&gt;')
      expect((await request(proxy.port, { path: '/up' })).status).toBe(200)
      expect(stripStyles((await host.kamal(['list'])).stdout)).toMatch(/^app-web .* stopped +no +$/m)
      // kamal app live
      succeeded(await host.kamal(['resume', 'app-web']))
      expect((await request(proxy.port)).body).toBe(v3.name)
      succeeded(await host.kamal(['resume', 'app-web']))

      // kamal app remove
      succeeded(await host.kamal(['remove', 'app-web']))
      expect((await request(proxy.port)).status).toBe(404)
      failed(await host.kamal(['remove', 'app-web']), 'service not found')
      failed(await host.kamal(['rollout', 'set', 'app-web', '--percent=5']), 'service not found')
    },
    LOAD_TEST_TIMEOUT_MS,
  )

  it('refuses what mproxy lacks and kamal-proxy\'s own mistakes with its messages, changing nothing', async () => {
    const host = kamalHost()
    failed(await host.kamal(['list']), `dial unix ${host.socket}: connect: no such file or directory`)
    const proxy = await host.run()
    const backend = await startBackend()
    succeeded(await host.kamal(['deploy', 'web', '--target', backend.address, '--host', 'app.test']))

    failed(await host.kamal(['deploy', 'other', `--target=${backend.address}`, '--host=app.test']), 'host settings conflict with another service')
    failed(await host.kamal(['deploy', 'web', `--target=${backend.address}`, '--host=app.test', '--health-check-port=8080']),
      "--health-check-port is not supported by mproxy: health checks go to the target's own port")
    failed(await host.kamal(['deploy', 'web', '--target=http://web:3000']), 'http://web:3000 :invalid host pattern')
    failed(await host.kamal(['deploy', 'web', '--target=127.0.0.1:1', '--deploy-timeout=300ms', '--health-check-interval=50ms']), 'target failed to become healthy within configured timeout (300ms)')
    failed(await host.kamal(['rollout', 'set', 'web', '--percent=10']), 'rollout target not set')
    failed(await host.kamal(['deploy', 'web']), 'required flag(s) "target" not set')
    failed(await host.kamal(['run', '--http3']), '--http3 is not supported by mproxy: Node serves no HTTP/3 (QUIC)')
    const unknown = await host.kamal(['deplyo', 'web'])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toBe(`Error: unknown command "deplyo" for "kamal-proxy"\n\nDid you mean this?\n\tdeploy\n\nRun 'kamal-proxy --help' for usage.\n`)

    expect((await mproxyList(host.dataDir)).services.map((service) => [service.name, service.hosts, service.targets.map((target) => target.address)]))
      .toEqual([['web', ['app.test'], [backend.address]]])
    expect((await request(proxy.port, { host: 'app.test' })).body).toBe(backend.name)
  })
})

describe('both dialects, one server', () => {
  it('shows services deployed with either command to the other, whichever started the server', async () => {
    const host = kamalHost()
    const [a, b, c] = [await startBackend(), await startBackend(), await startBackend()]
    const started = await host.run()
    // The socket where Kamal looks, and a link to it where mproxy looks.
    expect(fs.lstatSync(path.join(host.dataDir, 'mproxy.sock')).isSymbolicLink()).toBe(true)
    expect(fs.readlinkSync(path.join(host.dataDir, 'mproxy.sock'))).toBe(host.socket)
    succeeded(await host.kamal(['deploy', 'from-kamal', `--target=${a.address}`, '--host=kamal.test']))
    const deployed = await runCli(['deploy', b.address, '--name', 'from-mproxy', '--host', 'mproxy.test'], { stateDir: host.dataDir })
    expect(deployed.code).toBe(0)
    expect((await mproxyList(host.dataDir)).services.map((service) => service.name)).toEqual(['from-kamal', 'from-mproxy'])
    expect(stripStyles((await host.kamal(['ls'])).stdout)).toMatch(/^from-kamal +kamal\.test .*\nfrom-mproxy +mproxy\.test /m)
    expect(await started.stop()).toBe(0)
    // The socket and its link are gone with the server.
    expect(fs.existsSync(host.socket)).toBe(false)
    expect(fs.existsSync(path.join(host.dataDir, 'mproxy.sock'))).toBe(false)

    // Started as mproxy on the data dir: kamal-proxy finds it there when nothing answers at its socket.
    const mproxy = await startProxy({ workers: 1, stateDir: host.dataDir })
    succeeded(await host.kamal(['deploy', 'third', `--target=${c.address}`, '--host=third.test']))
    expect(stripStyles((await host.kamal(['list'])).stdout).split('\n').map((line) => line.split(' ')[0])).toEqual(['Service', 'from-kamal', 'from-mproxy', 'third', ''])
    expect((await request(mproxy.port, { host: 'third.test' })).body).toBe(c.name)
  })

  it('hands over from a kamal-proxy run to the next one, and to an mproxy run on its data dir', async () => {
    const host = kamalHost()
    const backend = await startBackend()
    const first = await host.run()
    succeeded(await host.kamal(['deploy', 'web', `--target=${backend.address}`]))

    const second = await host.run()
    expect(second.port).toBe(first.port)
    expect(await first.exited).toBe(0)
    expect((await request(second.port)).body).toBe(backend.name)
    succeeded(await host.kamal(['deploy', 'web', `--target=${backend.address}`, '--health-check-path=/']))

    // Found through the link in the data dir.
    const third = await startProxy({ workers: 1, stateDir: host.dataDir, httpPort: 0 })
    expect(third.logs.some((line) => line.msg === `taking over from pid ${second.proc.pid}`)).toBe(true)
    expect(await second.exited).toBe(0)
    expect(stripStyles((await host.kamal(['list'])).stdout)).toMatch(/^web +\* +\/ +127\.0\.0\.1:\d+ +running +no +$/m)
  })
})

describe('moving from kamal-proxy', () => {
  const FIXTURES = path.join(__dirname, 'fixtures')
  const PRODUCTION = createHash('sha256').update('').digest('hex')

  it('imports kamal-proxy.state and reuses its certificates on a first start, and only then', async () => {
    const host = kamalHost()
    const backend = await startBackend()
    // kamal-proxy's data dir: some services of the fixture, and its certificate cache.
    const all = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'kamal-proxy.state'), 'utf8')) as { name: string; active_targets?: string[] }[]
    const services = all.filter((service) => ['app-web', 'app-api', 'legacy', 'tenants'].includes(service.name))
    services[0].active_targets = [backend.address]
    const state = JSON.stringify(services) + '\n'
    fs.mkdirSync(path.join(host.dataDir, 'certs'), { recursive: true })
    fs.writeFileSync(path.join(host.dataDir, 'kamal-proxy.state'), state)
    fs.cpSync(path.join(FIXTURES, 'kamal-proxy-certs', PRODUCTION), path.join(host.dataDir, 'certs', PRODUCTION), { recursive: true })

    const proxy = await host.run()
    await proxy.waitForLog((line) => line.msg === 'kamal-proxy state imported')
    const logged = (msg: string) => proxy.logs.filter((line) => line.msg === msg)
    expect(logged('kamal-proxy service not imported').map((line) => line.service)).toEqual(['tenants'])
    expect(logged('kamal-proxy certificate reused').map((line) => line.host)).toEqual(['app.example.com'])
    expect(logged('kamal-proxy service imported stopped').map((line) => [line.service, line.stopMessage])).toEqual([['legacy', 'Back soon']])

    expect(stripStyles((await host.kamal(['list'])).stdout).split('\n').map((line) => line.trimEnd().split(/ +/))).toEqual([
      ['Service', 'Host', 'Path', 'Target', 'State', 'TLS'],
      // Writers, then readers, as kamal-proxy lists them.
      ['app-api', 'app.example.com', '/api', 'api-1:3000,api-2:3000,api-replica:3000', 'running', 'yes'],
      ['app-web', 'app.example.com', '/', backend.address, 'running', 'yes'],
      ['legacy', 'legacy.example.com', '/', 'legacy-web:3000', 'stopped', 'no'],
      [''],
    ])
    // Its own certificate, served at once: nothing was ordered.
    const served = await new Promise<X509Certificate>((resolve, reject) => {
      const socket = tls.connect({ port: proxy.httpsPort, host: '127.0.0.1', servername: 'app.example.com', rejectUnauthorized: false }, () => {
        resolve(socket.getPeerX509Certificate()!)
        socket.end()
      })
      socket.on('error', reject)
    })
    const cached = new X509Certificate(fs.readFileSync(path.join(FIXTURES, 'kamal-proxy-certs', PRODUCTION, 'app.example.com')))
    expect(served.fingerprint256).toBe(cached.fingerprint256)
    expect((await request(proxy.port, { host: 'app.example.com' })).status).toBe(301)

    // Nothing of kamal-proxy's is deleted; a restart reads mproxy's state, not kamal-proxy's.
    expect(await proxy.stop()).toBe(0)
    expect(fs.readFileSync(path.join(host.dataDir, 'kamal-proxy.state'), 'utf8')).toBe(state)
    expect(fs.readdirSync(path.join(host.dataDir, 'certs', PRODUCTION)).sort()).toEqual(fs.readdirSync(path.join(FIXTURES, 'kamal-proxy-certs', PRODUCTION)).sort())
    const restarted = await host.run()
    expect(restarted.logs.some((line) => line.msg === 'kamal-proxy state imported')).toBe(false)
    expect((await mproxyList(host.dataDir)).services.map((service) => service.name)).toEqual(['app-api', 'app-web', 'legacy'])
  })
})
