import type { ServiceStatus } from '../src/control/protocol'
import {
  HostInUseError, InvalidCertificateError, InvalidOptionError, RolloutNotSetError, ServiceNotFoundError, TargetUnhealthyError,
} from '../src/errors'
import { formatServiceTable, kamalErrorMessage } from '../src/kamal/answers'
import { parseCommandLine } from '../src/kamal/command-line'
import type { KamalCommand } from '../src/kamal/commands'
import { CommandLineError } from '../src/kamal/flags'
import { DEPLOY_FLAG_GAPS } from '../src/kamal/gaps'
import {
  deployNeeds, translateDeploy, translatePause, translateResume, translateRolloutDeploy, translateRolloutSet, translateRun, translateStop, translateTarget,
  type DeployContext,
} from '../src/kamal/translate'
import { LETS_ENCRYPT_STAGING_DIRECTORY } from '../src/options'

const environment = { env: {}, dataDir: '/home/kamal-proxy/.config/kamal-proxy' }
const context: DeployContext = { environment, services: [] }

function command<N extends KamalCommand['name']>(name: N, line: string[], env: NodeJS.ProcessEnv = {}): Extract<KamalCommand, { name: N }> {
  const parsed = parseCommandLine(line, { ...environment, env })
  if (parsed.name !== name) throw new Error(`parsed as ${parsed.name}`)
  return parsed as Extract<KamalCommand, { name: N }>
}

const deploy = (line: string[], ctx: DeployContext = context) => translateDeploy(command('deploy', ['deploy', 'app-web', ...line]), ctx)

function refusal(work: () => unknown): string {
  try {
    work()
  } catch (err) {
    if (err instanceof CommandLineError) return err.message
    throw err
  }
  throw new Error('accepted')
}

function service(overrides: Partial<ServiceStatus>): ServiceStatus {
  return {
    name: 'web', hosts: [], pathPrefixes: ['/'], stripPathPrefix: true, scopeCookiePaths: false, targets: [], tls: false, tlsRedirect: false,
    certificates: [], healthCheck: { path: '/up', intervalMs: 1000, timeoutMs: 5000 }, drainTimeoutMs: 30000, drainWebSockets: false,
    targetTimeoutMs: 30000, excludeMetricsPaths: [], state: 'running', stopMessage: '', maxPauseMs: 30000, held: 0,
    buffering: { requests: false, responses: false, memoryBytes: 1_048_576, maxRequestBodyBytes: 0, maxResponseBodyBytes: 0 },
    forwardHeaders: false, logRequestHeaders: [], logResponseHeaders: [], writerAffinityTimeoutMs: 1000, readTargetWebSockets: false, ...overrides,
  }
}

describe('kamal-proxy deploy as an mproxy deploy request', () => {
  it('translates the command line Kamal 2 sends for an app', () => {
    // What `kamal deploy` runs: docker exec kamal-proxy kamal-proxy deploy app-web --target="<container>:80" ...
    expect(deploy([
      '--target=a1b2c3d4e5f6:80', '--host=app.example.com', '--tls', '--deploy-timeout=30s', '--drain-timeout=30s', '--buffer-requests', '--buffer-responses',
      '--log-request-header=Cache-Control', '--log-request-header=Last-Modified', '--log-request-header=User-Agent',
    ])).toEqual({
      name: 'app-web',
      targets: ['a1b2c3d4e5f6:80'],
      readTargets: [],
      writerAffinityTimeoutMs: 1000,
      readTargetWebSockets: false,
      hosts: ['app.example.com'],
      pathPrefixes: ['/'],
      stripPathPrefix: true,
      scopeCookiePaths: false,
      tls: true,
      tlsRedirect: true,
      healthCheck: { path: '/up', intervalMs: 1000, timeoutMs: 5000 },
      deployTimeoutMs: 30000,
      drainTimeoutMs: 30000,
      targetTimeoutMs: 30000,
      force: false,
      // With TLS, kamal-proxy does not trust the clients' X-Forwarded-* unless told to.
      forwardHeaders: false,
      logRequestHeaders: ['Cache-Control', 'Last-Modified', 'User-Agent'],
      logResponseHeaders: [],
      buffering: { requests: true, responses: true, memoryBytes: 1_048_576, maxRequestBodyBytes: 0, maxResponseBodyBytes: 0 },
    })
  })

  it('trusts forwarding headers without TLS unless told not to, as kamal-proxy does', () => {
    expect([[], ['--forward-headers=false'], ['--tls', '--host=a.test'], ['--tls', '--host=a.test', '--forward-headers']]
      .map((line) => deploy(['--target=web:1', ...line]).forwardHeaders)).toEqual([true, false, false, true])
  })

  it('maps buffering, limits, the canonical host and logged headers', () => {
    expect(deploy([
      '--target=web:1', '--host=a.test,www.a.test', '--canonical-host=a.test', '--buffer-requests', '--max-request-body=1024',
      '--buffer-responses', '--max-response-body=2048', '--buffer-memory=512', '--log-response-header=X-Runtime',
    ])).toMatchObject({
      canonicalHost: 'a.test',
      logResponseHeaders: ['X-Runtime'],
      buffering: { requests: true, responses: true, memoryBytes: 512, maxRequestBodyBytes: 1024, maxResponseBodyBytes: 2048 },
    })
  })

  it('maps every option mproxy has', () => {
    expect(deploy([
      '--target', 'web-1:3000,web-2', '--host', 'a.test', '--path-prefix', 'api/', '--strip-path-prefix=false', '--scope-cookie-paths',
      '--health-check-path', 'health', '--health-check-interval', '250ms', '--health-check-timeout', '2s', '--deploy-timeout', '1m',
      '--drain-timeout', '0', '--target-timeout', '1.5s', '--force', '--error-pages', 'pages', '--exclude-metrics-path=/up,/metrics',
    ])).toEqual({
      name: 'app-web', targets: ['web-1:3000', 'web-2:80'], hosts: ['a.test'], pathPrefixes: ['/api'], stripPathPrefix: false, scopeCookiePaths: true,
      tls: false, errorPagesPath: `${process.cwd()}/pages`, excludeMetricsPaths: ['/up', '/metrics'], healthCheck: { path: '/health', intervalMs: 250, timeoutMs: 2000 }, deployTimeoutMs: 60000, drainTimeoutMs: 0, targetTimeoutMs: 1500, force: true,
      forwardHeaders: true, logRequestHeaders: [], logResponseHeaders: [],
      buffering: { requests: false, responses: false, memoryBytes: 1_048_576, maxRequestBodyBytes: 0, maxResponseBodyBytes: 0 },
      readTargets: [], writerAffinityTimeoutMs: 1000, readTargetWebSockets: false,
    })
  })

  it.each([
    ['a provided certificate, resolved from here', ['--tls-certificate-path=/etc/c.pem', '--tls-private-key-path=k.pem'], { tls: true, tlsRedirect: true, tlsCertificatePath: '/etc/c.pem', tlsPrivateKeyPath: `${process.cwd()}/k.pem` }],
    ['no redirect', ['--tls-redirect=false'], { tls: true, tlsRedirect: false }],
  ])('serves TLS with %s', (_case, flags, tls) => {
    expect(deploy(['--target=web:1', '--host=a.test', '--tls', ...flags])).toMatchObject(tls)
  })

  it('leaves certificate files out without --tls, as kamal-proxy does', () => {
    const request = deploy(['--target=web:1', '--host=a.test', '--tls-certificate-path=/c.pem', '--tls-private-key-path=/k.pem'])
    expect(request.tls).toBe(false)
    expect(request.tlsCertificatePath).toBeUndefined()
  })

  it('gives a path-prefixed service the TLS settings of its host\'s root service, and asks for the services first', () => {
    const line = ['--target=web:1', '--host=App.test', '--path-prefix=/api']
    expect(deployNeeds(command('deploy', ['deploy', 'api', ...line]))).toEqual({ services: true, acmeDirectory: false })
    const root = service({ hosts: ['app.test'], tls: true, tlsRedirect: false, tlsCertificatePath: '/c.pem', tlsPrivateKeyPath: '/k.pem' })
    expect(deploy(line, { ...context, services: [root] })).toMatchObject({ tls: true, tlsRedirect: false, tlsCertificatePath: '/c.pem', tlsPrivateKeyPath: '/k.pem' })
    expect(deploy(line, { ...context, services: [service({ hosts: ['other.test'], tls: true })] }).tls).toBe(false)
    expect(deployNeeds(command('deploy', ['deploy', 'web', '--target=web:1', '--host=app.test']))).toEqual({ services: false, acmeDirectory: false })
  })

  it('takes --tls-staging only from a proxy that orders from the staging directory', () => {
    const line = ['--target=web:1', '--host=a.test', '--tls', '--tls-staging']
    expect(deployNeeds(command('deploy', ['deploy', 'web', ...line])).acmeDirectory).toBe(true)
    expect(refusal(() => deploy(line))).toBe('--tls-staging needs the proxy started with MPROXY_ACME_STAGING=true: mproxy orders all certificates from one ACME directory')
    expect(deploy(line, { ...context, acmeDirectory: LETS_ENCRYPT_STAGING_DIRECTORY }).tls).toBe(true)
  })

  it.each([
    ['a target with a scheme', ['--target=http://web:3000'], 'http://web:3000 :invalid host pattern'],
    ['a one-character target', ['--target=a'], 'a :invalid host pattern'],
    ['an IPv6 target', ['--target=[::1]:80'], '[::1]:80 :invalid host pattern'],
    ['automatic TLS for a wildcard', ['--target=web:1', '--host=*.a.test', '--tls'], 'automatic TLS does not support wildcards'],
  ])('refuses %s as kamal-proxy does', (_case, line, message) => {
    expect(refusal(() => deploy(line))).toBe(message)
  })

  it.each([
    ['--health-check-port', ['--health-check-port=8080'], "--health-check-port is not supported by mproxy: health checks go to the target's own port"],
    ['--health-check-host', ['--health-check-host=internal'], "--health-check-host is not supported by mproxy: health checks send the target's address as Host"],
    ['--tls-on-demand-url', ['--tls', '--tls-on-demand-url=/allow'], '--tls-on-demand-url is not supported by mproxy: certificates are ordered for the --host names only'],
    ['--client-ip-header', ['--client-ip-header=CF-Connecting-IP'], '--client-ip-header is not supported by mproxy: start the proxy with MPROXY_TRUSTED_PROXIES to trust the X-Forwarded-For of a proxy in front'],
    ['--tls-acme-cache-path', ['--tls-acme-cache-path=/certs'], '--tls-acme-cache-path is not supported by mproxy: certificates are kept in the data directory'],
  ])('refuses %s (gaps table)', (_case, line, message) => {
    expect(refusal(() => deploy(['--target=web:1', ...line]))).toBe(message)
  })

  it.each([
    ['--buffer-requests=false', '--forward-headers=false', '--tls-acme-cache-path=/home/kamal-proxy/.config/kamal-proxy/certs', '--buffer-memory=1048576', '--health-check-port=0', '--host='],
  ])('accepts flags of the table given their default values, silently', (...line) => {
    expect(deploy(['--target=web:1', ...line]).ignoredOptions).toBeUndefined()
  })

  it('maps read targets and writer affinity', () => {
    expect(deploy(['--target=web:1', '--read-target=replica-1:3000,replica-2', '--writer-affinity-timeout=250ms', '--read-target-websockets'])).toMatchObject({
      targets: ['web:1'], readTargets: ['replica-1:3000', 'replica-2:80'], writerAffinityTimeoutMs: 250, readTargetWebSockets: true,
    })
    expect(deploy(['--target=web:1', '--writer-affinity-timeout=0']).ignoredOptions).toBeUndefined()
  })
})

describe('kamal-proxy targets', () => {
  it.each([['web-1:3000', 'web-1:3000'], ['web-1', 'web-1:80'], ['10.0.0.5:8080', '10.0.0.5:8080'], ['a1b2c3d4e5f6:80', 'a1b2c3d4e5f6:80'], ['my_app+x', 'my_app+x:80']])('%s → %s', (target, translated) => {
    expect(translateTarget(target)).toBe(translated)
  })
})

describe('other kamal-proxy commands', () => {
  it('bounds a rollout percentage as kamal-proxy does in effect: below 0 is nobody, 100 and above everybody', () => {
    expect(translateRolloutSet(command('rollout set', ['rollout', 'set', 'web', '--percent=-5']))).toEqual({ name: 'web', percent: 0, allowlist: [] })
    expect(translateRolloutSet(command('rollout set', ['rollout', 'set', 'web', '--percent=250', '--list=a,b']))).toEqual({ name: 'web', percent: 100, allowlist: ['a', 'b'] })
  })

  it('deploys rollout targets, refusing read targets and logging a drain timeout of its own', () => {
    expect(translateRolloutDeploy(command('rollout deploy', ['rollout', 'deploy', 'web', '--target=canary', '--deploy-timeout=5s']))).toEqual({ name: 'web', targets: ['canary:80'], deployTimeoutMs: 5000 })
    expect(translateRolloutDeploy(command('rollout deploy', ['rollout', 'deploy', 'web', '--target=canary', '--drain-timeout=5s'])).ignoredOptions).toHaveLength(1)
    expect(refusal(() => translateRolloutDeploy(command('rollout deploy', ['rollout', 'deploy', 'web', '--target=canary:1', '--read-target=replica:1'])))).toMatch(/^--read-target is not supported by mproxy/)
  })

  it('pauses, stops and resumes with kamal-proxy\'s 30 s defaults sent, not mproxy\'s', () => {
    expect(translatePause(command('pause', ['pause', 'web']))).toEqual({ name: 'web', drainTimeoutMs: 30000, maxPauseMs: 30000 })
    expect(translatePause(command('pause', ['pause', 'web', '--drain-timeout=5s', '--max-pause=1m']))).toEqual({ name: 'web', drainTimeoutMs: 5000, maxPauseMs: 60000 })
    expect(translateStop(command('stop', ['stop', 'web']))).toEqual({ name: 'web', drainTimeoutMs: 30000, message: '' })
    expect(translateStop(command('stop', ['stop', 'web', '--drain-timeout=10s', '--message=Back <soon>']))).toEqual({ name: 'web', drainTimeoutMs: 10000, message: 'Back <soon>' })
    expect(translateResume(command('resume', ['resume', 'web']))).toEqual({ name: 'web' })
  })

  it.each<[string, string[], NodeJS.ProcessEnv, string]>([
    ['--http3', ['--http3'], {}, '--http3 is not supported by mproxy: Node serves no HTTP/3 (QUIC)'],
  ])('refuses run %s', (_case, line, env, message) => {
    expect(refusal(() => translateRun(command('run', ['run', ...line], env).flags))).toBe(message)
  })

  it('runs with the ports and log level asked for', () => {
    expect(translateRun(command('run', ['run', '--http-port=8080', '--debug'], { HTTPS_PORT: '8443' }).flags)).toEqual({ httpPort: 8080, httpsPort: 8443, metricsPort: 0, debug: true })
    expect(translateRun(command('run', ['run'], { KAMAL_PROXY_METRICS_PORT: '9000', METRICS_PORT: '9001' }).flags).metricsPort).toBe(9000)
  })
})

describe('kamal-proxy answers', () => {
  it.each<[string, unknown, string]>([
    ['a host conflict', new HostInUseError('host a.test is already used by service web'), 'host settings conflict with another service'],
    ['an unknown service', new ServiceNotFoundError('service x not found'), 'service not found'],
    ['a split without rollout targets', new RolloutNotSetError('web has no rollout targets'), 'rollout target not set'],
    ['an unusable certificate', new InvalidCertificateError('/c.pem is not a PEM certificate'), 'unable to load certificate'],
    ['unhealthy targets', new TargetUnhealthyError('not healthy after 1m'), 'target failed to become healthy within configured timeout (1m0s)'],
    ['anything else, in mproxy\'s words', new InvalidOptionError('invalid service name "a b"'), 'invalid service name "a b"'],
  ])('words %s as kamal-proxy does', (_case, err, message) => {
    expect(kamalErrorMessage(err, 60_000_000_000n)).toBe(message)
  })

  it('prints kamal-proxy\'s list table: sorted, styled cells padded to their column, two spaces after each', () => {
    const services = [
      service({ name: 'web', hosts: ['app.test'], tls: true, targets: [
        { address: 'web-2:3000', health: 'healthy', slot: 'active', inflight: 0 },
        { address: 'canary:3000', health: 'healthy', slot: 'rollout', inflight: 0 },
        { address: 'web-1:3000', health: 'draining', slot: 'active', inflight: 3 },
      ] }),
      service({ name: 'api', hosts: ['app.test'], pathPrefixes: ['/api', '/v2'], targets: [{ address: 'api:80', health: 'adding', slot: 'active', inflight: 0 }] }),
      service({ name: 'default', state: 'stopped', targets: [{ address: 'x:1', health: 'healthy', slot: 'active', inflight: 0 }, { address: 'y:1', health: 'unhealthy', slot: 'active', inflight: 0 }] }),
    ]
    const plain = formatServiceTable(services).replace(/\x1b\[[\d;]*m/g, '')
    expect(plain).toBe([
      'Service  Host      Path      Target      State    TLS  ',
      'api      app.test  /api,/v2  api:80      running  no   ',
      'default  *         /         x:1,y:1     stopped  no   ',
      'web      app.test  /         web-2:3000  running  yes  ',
      '',
    ].join('\n'))
    expect(formatServiceTable([]).split('\n')[0]).toBe('\x1b[3;94mService\x1b[0m  \x1b[3;94mHost\x1b[0m  \x1b[3;94mPath\x1b[0m  \x1b[3;94mTarget\x1b[0m  \x1b[3;94mState\x1b[0m  \x1b[3;94mTLS\x1b[0m  ')
    expect(formatServiceTable(services).split('\n')[1]).toMatch(/^\x1b\[1;34mapi\x1b\[0m {6}\x1b\[mapp\.test\x1b\[0m/)
  })
})
