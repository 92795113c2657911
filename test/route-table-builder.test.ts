import { buildRouteTable, type RoutedService } from '../src/primary/workers/route-table-builder'
import { normalizeServiceSpec } from '../src/options'

function service(targets: Array<[string, string]>, overrides: Partial<RoutedService> = {}): RoutedService {
  return {
    spec: normalizeServiceSpec({ name: 'web', hosts: ['app.test'], targets: targets.map(([address]) => address) }),
    targets: targets.map(([address, state]) => ({ address, state })),
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
    ['all of them when none is healthy (a health-check blip is not an outage)', [['a:1', 'unhealthy'], ['b:1', 'unhealthy']], ['a:1', 'b:1']],
    ['a restored target not checked yet', [['a:1', 'healthy'], ['b:1', 'adding']], ['a:1']],
  ] as Array<[string, Array<[string, string]>, string[]]>)('routes to %s', (_case, targets, routed) => {
    expect(buildRouteTable(1, [service(targets)], NO_TLS).services[0].targets).toEqual(routed)
  })

  it('carries each service’s options and the TLS material, with the given version', () => {
    const tls = { certificates: [{ hosts: ['app.test'], cert: 'C', key: 'K' }], acmeThumbprint: 'T', acmeTlsChallenges: [] }
    const table = buildRouteTable(42, [service([['a:1', 'healthy']], { tlsRedirect: true, acmeChallenges: true })], tls)
    expect(table).toEqual({
      version: 42,
      services: [{
        name: 'web', hosts: ['app.test'], pathPrefixes: ['/'], stripPathPrefix: true, scopeCookiePaths: false, targets: ['a:1'], targetTimeoutMs: 30_000,
        drainWebSockets: false, tlsRedirect: true, acmeChallenges: true, canonicalHost: '', forwardHeaders: false, logRequestHeaders: [], logResponseHeaders: [],
      }],
      ...tls,
    })
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
