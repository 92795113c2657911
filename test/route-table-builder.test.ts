import { buildRouteTable, type RoutedService } from '../src/primary/workers/route-table-builder'
import { normalizeServiceSpec } from '../src/service-spec'

function service(targets: Array<[string, string]>, overrides: Partial<RoutedService> = {}): RoutedService {
  return {
    spec: normalizeServiceSpec({ name: 'web', hosts: ['app.test'], targets: targets.map(([address]) => address) }),
    targets: targets.map(([address, state]) => ({ address, state })),
    readTargets: [],
    rolloutTargets: [],
    tlsRedirect: false,
    acmeChallenges: false,
    ...overrides,
  }
}

const NO_TLS = { certificates: [], acmeThumbprint: '', acmeTlsChallenges: [] }

describe('buildRouteTable', () => {
  it.each([
    ['all healthy', [['a:1', 'healthy'], ['b:1', 'healthy']], ['a:1', 'b:1']],
    ['only the healthy ones', [['a:1', 'healthy'], ['b:1', 'unhealthy']], ['a:1']],
    ['none when no target of several is healthy (the service answers 503)', [['a:1', 'unhealthy'], ['b:1', 'unhealthy']], []],
    ['the only target of a service, healthy or not (a health-check blip is not an outage)', [['a:1', 'unhealthy']], ['a:1']],
    ['a restored target not checked yet', [['a:1', 'healthy'], ['b:1', 'adding']], ['a:1']],
    ['the targets a forced deploy switched to before any check passed', [['a:1', 'adding'], ['b:1', 'unhealthy']], ['a:1']],
  ] as Array<[string, Array<[string, string]>, string[]]>)('routes to %s', (_case, targets, routed) => {
    expect(buildRouteTable(1, [service(targets)], NO_TLS).services[0].targets).toEqual(routed)
  })

  it('carries each service’s options and the TLS material, with the given version', () => {
    const tls = { certificates: [{ hosts: ['app.test'], cert: 'C', key: 'K' }], acmeThumbprint: 'T', acmeTlsChallenges: [] }
    const table = buildRouteTable(42, [service([['a:1', 'healthy']], { tlsRedirect: true, acmeChallenges: true })], tls)
    expect(table).toEqual({
      version: 42,
      services: [{
        name: 'web', hosts: ['app.test'], pathPrefixes: ['/'], stripPathPrefix: true, scopeCookiePaths: false, targets: ['a:1'], rolloutTargets: [], targetTimeoutMs: 30_000,
        readTargets: [], writerAffinityMs: 0, readTargetWebSockets: false,
        drainWebSockets: false, excludeMetricsPaths: [], tlsRedirect: true, acmeChallenges: true, state: 'running', stopMessage: '', maxPauseMs: 30_000, healthCheckPath: '/up', errorPages: {},
        buffering: { requests: false, responses: false, memoryBytes: 1_048_576, maxRequestBodyBytes: 0, maxResponseBodyBytes: 0 },
        canonicalHost: '', forwardHeaders: false, logRequestHeaders: [], logResponseHeaders: [],
      }],
      ...tls,
    })
  })

  it('routes the rollout slot the same way, with its split', () => {
    const spec = normalizeServiceSpec({ name: 'web', targets: ['a:1'], rollout: { targets: ['r:1', 'r:2'], split: { percent: 10, allowlist: ['beta'] } } })
    const routed = buildRouteTable(1, [{ ...service([['a:1', 'healthy']]), spec, rolloutTargets: [{ address: 'r:1', state: 'unhealthy' }, { address: 'r:2', state: 'healthy' }] }], NO_TLS)
    expect(routed.services[0]).toMatchObject({ targets: ['a:1'], rolloutTargets: ['r:2'], rolloutSplit: { percent: 10, allowlist: ['beta'] } })
  })

  it.each([
    ['the healthy read targets, and writer affinity', [['r:1', 'healthy'], ['r:2', 'unhealthy']], 1000, ['r:1'], 1000],
    ['the read targets a forced deploy switched to before any check', [['r:1', 'adding'], ['r:2', 'unhealthy']], 1000, ['r:1'], 1000],
    ['no failing read target, even the only one (the targets answer reads too), and affinity still on', [['r:1', 'unhealthy']], 1000, [], 1000],
    ['no writer affinity without read targets', [], 1000, [], 0],
    ['no writer affinity when it is off', [['r:1', 'healthy']], 0, ['r:1'], 0],
  ] as Array<[string, Array<[string, string]>, number, string[], number]>)('routes reads to %s', (_case, readers, affinityMs, readTargets, writerAffinityMs) => {
    const spec = normalizeServiceSpec({ name: 'web', targets: ['a:1'], readTargets: readers.map(([address]) => address), writerAffinityTimeoutMs: affinityMs })
    const [routed] = buildRouteTable(1, [{ ...service([['a:1', 'healthy']]), spec, readTargets: readers.map(([address, state]) => ({ address, state })) }], NO_TLS).services
    expect([routed.readTargets, routed.writerAffinityMs]).toEqual([readTargets, writerAffinityMs])
  })

  it('carries a stopped service’s state, message and error pages', () => {
    const spec = { ...normalizeServiceSpec({ name: 'web', targets: ['a:1'], healthCheck: { path: '/health?full=1' } }), state: 'stopped' as const, stopMessage: 'Back soon' }
    const [routed] = buildRouteTable(1, [{ ...service([['a:1', 'healthy']]), spec, errorPages: { 503: '<p>{{ .Message }}</p>' } }], NO_TLS).services
    expect(routed).toMatchObject({ state: 'stopped', stopMessage: 'Back soon', healthCheckPath: '/health?full=1', errorPages: { 503: '<p>{{ .Message }}</p>' } })
  })

  it('carries the redirect and header options', () => {
    const spec = normalizeServiceSpec({
      name: 'web', hosts: ['app.test', 'www.app.test'], targets: ['a:1'], canonicalHost: 'app.test', forwardHeaders: true,
      logRequestHeaders: ['CF-Ray'], logResponseHeaders: ['Cache-Control'],
    })
    const [routed] = buildRouteTable(1, [{ ...service([['a:1', 'healthy']]), spec }], NO_TLS).services
    expect(routed).toMatchObject({ canonicalHost: 'app.test', forwardHeaders: true, logRequestHeaders: ['cf-ray'], logResponseHeaders: ['cache-control'] })
  })
})
