import { InvalidHostError, InvalidOptionError, InvalidTargetError } from '../src/errors'
import { normalizeHeaderName, normalizeHost, normalizeTarget, splitList, splitTarget, validatePath, validateServiceName } from '../src/lib/validate'
import { DEFAULT_SERVICE_NAME } from '../src/options'
import { normalizeServiceSpec } from '../src/service-spec'

describe('normalizeTarget', () => {
  it.each([
    ['a host name and port', 'web-1:3000', 'web-1:3000'],
    ['an upper-case host (lower-cased)', 'WEB-1:3000', 'web-1:3000'],
    ['an IPv4 address', '10.0.0.5:8080', '10.0.0.5:8080'],
    ['a bracketed IPv6 address', '[::1]:3000', '[::1]:3000'],
    ['localhost on port 1', 'localhost:1', 'localhost:1'],
    ['the highest port', 'web:65535', 'web:65535'],
    ['surrounding whitespace', ' web:3000 ', 'web:3000'],
  ])('accepts %s (%j)', (_case, input, expected) => {
    expect(normalizeTarget(input)).toBe(expected)
  })

  it.each([
    ['port 0', 'web:0', /port must be 1-65535/],
    ['port 70000', 'web:70000', /port must be 1-65535/],
    ['port 65536', 'web:65536', /port must be 1-65535/],
    ['a missing port', 'web', /expected host:port/],
    ['an empty port', 'web:', /expected host:port/],
    ['a missing host', ':3000', /expected host:port/],
    ['an unbracketed IPv6 address', '::1:3000', /expected host:port/],
    ['a bracketed IPv6 address without port', '[::1]', /expected host:port/],
    ['a non-address in brackets', '[zz]:80', /expected host:port/],
    ['a path after the port', 'web:3000/x', /expected host:port/],
    ['a space in the host', 'a b:3000', /expected host:port/],
    ['an underscore in the host', 'under_score:3000', /not a valid host name/],
    ['a URL', 'http://web:3000', /expected host:port/],
  ])('refuses %s (%j)', (_case, input, message) => {
    expect(() => normalizeTarget(input)).toThrow(InvalidTargetError)
    expect(() => normalizeTarget(input)).toThrow(message)
  })
})

describe('normalizeHost', () => {
  it.each([
    ['a plain name', 'app.example.com', 'app.example.com'],
    ['upper case (lower-cased)', 'APP.Example.COM', 'app.example.com'],
    ['a trailing dot (removed)', 'app.example.com.', 'app.example.com'],
    ['a one-label wildcard', '*.example.com', '*.example.com'],
    ['a single label', 'localhost', 'localhost'],
    ['an IPv4 address', '10.0.0.1', '10.0.0.1'],
    ['digits and inner hyphens', 'web-2.example-1.com', 'web-2.example-1.com'],
  ])('accepts %s (%j)', (_case, input, expected) => {
    expect(normalizeHost(input)).toBe(expected)
  })

  it.each([
    ['a space', 'bad host'],
    ['an underscore', 'my_app.example.com'],
    ['an empty string', ''],
    ['an empty label', 'a..b'],
    ['a leading hyphen', '-app.com'],
    ['a trailing hyphen in a label', 'app-.com'],
    ['a port', 'app.example.com:80'],
    ['a bare wildcard', '*'],
    ['a two-label wildcard', '*.*.example.com'],
    ['a wildcard in the middle', 'app.*.com'],
    ['a wildcard over an IP address', '*.10.0.0.1'],
    ['a label over 63 characters', `${'a'.repeat(64)}.com`],
  ])('refuses %s (%j)', (_case, input) => {
    expect(() => normalizeHost(input)).toThrow(InvalidHostError)
  })
})

describe('splitList', () => {
  it.each([
    ['undefined', undefined, []],
    ['repeated values', ['a', 'b'], ['a', 'b']],
    ['comma-separated values', ['a,b', 'c'], ['a', 'b', 'c']],
    ['blanks and spaces', [' a , ,b ', ''], ['a', 'b']],
  ])('splits %s', (_case, input, expected) => {
    expect(splitList(input)).toEqual(expected)
  })
})

describe('validateServiceName', () => {
  it.each(['web', 'app.example.com', 'my_app-2'])('accepts %j', (name) => {
    expect(validateServiceName(name)).toBe(name)
  })

  it.each(['', 'has space', '-leading', 'slash/name', 'x'.repeat(129)])('refuses %j', (name) => {
    expect(() => validateServiceName(name)).toThrow(InvalidOptionError)
  })
})

describe('validatePath', () => {
  it.each(['/up', '/health?full=1', '/'])('accepts %j', (p) => {
    expect(validatePath(p)).toBe(p)
  })

  it.each(['up', '', '/has space', 'http://x/up'])('refuses %j', (p) => {
    expect(() => validatePath(p)).toThrow(InvalidOptionError)
  })
})

describe('normalizeServiceSpec', () => {
  it('fills in every default', () => {
    expect(normalizeServiceSpec({ targets: ['web:3000'] })).toEqual({
      name: DEFAULT_SERVICE_NAME,
      hosts: [],
      targets: ['web:3000'],
      readTargets: [],
      writerAffinityTimeoutMs: 1_000,
      readTargetWebSockets: false,
      pathPrefixes: ['/'],
      stripPathPrefix: true,
      scopeCookiePaths: false,
      healthCheck: { path: '/up', intervalMs: 1_000, timeoutMs: 5_000 },
      targetTimeoutMs: 30_000,
      drainTimeoutMs: 30_000,
      drainWebSockets: false,
      excludeMetricsPaths: [],
      tls: false,
      tlsRedirect: false,
      state: 'running',
      stopMessage: '',
      maxPauseMs: 30_000,
      buffering: { requests: false, responses: false, memoryBytes: 1_048_576, maxRequestBodyBytes: 0, maxResponseBodyBytes: 0 },
      forwardHeaders: false,
      logRequestHeaders: [],
      logResponseHeaders: [],
    })
  })

  it.each([
    ['a drain timeout no timer holds (from a state file or a request)', { drainTimeoutMs: 2 ** 31 }, /invalid drain timeout "596h31m23.648s": at most/],
    ['a health check interval no timer holds', { healthCheck: { intervalMs: 600 * 3_600_000 } }, /invalid health check interval "600h": at most/],
    ['TLS without hosts', { tls: true }, /needs at least one --host/],
    ['targets given as a string', { targets: 'web:3000' }, /^invalid service \(targets\): /],
    ['a duration given as text', { healthCheck: { intervalMs: '1s' } }, /^invalid service \(healthCheck\.intervalMs\): /],
    ['a certificate without its key', { hosts: ['a.com'], tlsCertificatePath: '/c.pem' }, /give both/],
    ['relative certificate paths', { hosts: ['a.com'], tlsCertificatePath: 'c.pem', tlsPrivateKeyPath: 'k.pem' }, /absolute/],
    ['automatic certificates for a wildcard host', { hosts: ['*.a.com'], tls: true }, /wildcard/],
    ['a metrics path with a query', { excludeMetricsPaths: ['/up?x=1'] }, /^invalid metrics path "\/up\?x=1": expected a path such as \/up, without a query$/],
    ['a relative metrics path', { excludeMetricsPaths: ['up'] }, /invalid metrics path "up"/],
    ['a canonical host that is not one of the hosts', { hosts: ['a.com', 'www.a.com'], canonicalHost: 'b.com' },
      /^canonical host b\.com is not one of the service's hosts \(a\.com, www\.a\.com\)$/],
    ['a wildcard canonical host', { canonicalHost: '*.a.com' }, /^invalid canonical host "\*\.a\.com": redirects need one host name/],
    ['a canonical host that is no host name', { canonicalHost: 'a b' }, /^invalid host "a b"/],
    ['a logged header that is no header name', { logRequestHeaders: ['X Bad'] }, /^invalid header name "X Bad" for --log-request-header$/],
    ['two logged headers that make the same field', { logResponseHeaders: ['X-A', 'x_a'] }, /^--log-response-header x-a and x_a would be logged as the same field$/],
    ['a read target that is also a target', { readTargets: ['replica:3000', 'WEB:3000'] }, /^web:3000 is both a target and a read target: give it once$/],
    ['a read target that is no address', { readTargets: ['http://replica'] }, /invalid target/],
    ['a negative writer affinity timeout', { writerAffinityTimeoutMs: -1 }, /^invalid writer affinity timeout: must be a non-negative duration$/],
  ])('refuses %s', (_case, input, message) => {
    expect(() => normalizeServiceSpec({ targets: ['web:3000'], ...input })).toThrow(message)
  })

  it('takes read targets, without duplicates, and writer affinity off at 0', () => {
    const spec = normalizeServiceSpec({ targets: ['web:3000'], readTargets: ['replica-1:3000', 'replica-1:3000', 'replica-2:3000'], writerAffinityTimeoutMs: 0 })
    expect([spec.readTargets, spec.writerAffinityTimeoutMs]).toEqual([['replica-1:3000', 'replica-2:3000'], 0])
  })

  it('turns TLS on with certificate files, redirecting HTTP by default', () => {
    const spec = normalizeServiceSpec({ targets: ['web:3000'], hosts: ['a.com'], tlsCertificatePath: '/c.pem', tlsPrivateKeyPath: '/k.pem' })
    expect(spec).toMatchObject({ tls: true, tlsRedirect: true, tlsCertificatePath: '/c.pem', tlsPrivateKeyPath: '/k.pem' })
  })

  it.each([
    ['one of its hosts, normalized', { hosts: ['a.com', 'www.a.com'], canonicalHost: 'A.com.' }, 'a.com'],
    ['any host when it has none', {}, 'b.com'],
  ])('takes a canonical host that is %s', (_case, input, expected) => {
    expect(normalizeServiceSpec({ targets: ['web:3000'], canonicalHost: expected.toUpperCase(), ...input }).canonicalHost).toBe(expected)
  })

  it('leaves an empty canonical host out, and lower-cases and de-duplicates logged headers', () => {
    const spec = normalizeServiceSpec({ targets: ['web:3000'], canonicalHost: '', logRequestHeaders: ['CF-Ray', 'cf-ray', 'X-Custom'], logResponseHeaders: ['Cache-Control'] })
    expect(spec).not.toHaveProperty('canonicalHost')
    expect(spec).toMatchObject({ logRequestHeaders: ['cf-ray', 'x-custom'], logResponseHeaders: ['cache-control'] })
  })

  it.each([
    ['"default" without hosts', {}, 'default'],
    ['the first host', { hosts: ['App.Example.com', 'other.example.com'] }, 'app.example.com'],
    ['the first host after de-duplication', { hosts: ['b.com', 'a.com', 'B.com'] }, 'b.com'],
    ['an explicit name over hosts', { name: 'web', hosts: ['app.example.com'] }, 'web'],
  ])('names the service after %s', (_case, input, expectedName) => {
    expect(normalizeServiceSpec({ targets: ['web:3000'], ...input }).name).toBe(expectedName)
  })

  it('accepts a wildcard host without an explicit name', () => {
    // `mproxy deploy web:3000 --host '*.example.com'` must not fail on the derived name.
    const spec = normalizeServiceSpec({ targets: ['web:3000'], hosts: ['*.example.com'] })
    expect(spec.name).toMatch(/example\.com/)
  })

  it('normalizes and de-duplicates targets and hosts', () => {
    const spec = normalizeServiceSpec({ targets: ['WEB:3000', 'web:3000', '[::1]:4000'], hosts: ['A.com.', 'a.com'] })
    expect(spec.targets).toEqual(['web:3000', '[::1]:4000'])
    expect(spec.hosts).toEqual(['a.com'])
  })

  it('keeps the excluded metrics paths, once each', () => {
    expect(normalizeServiceSpec({ targets: ['web:3000'], excludeMetricsPaths: ['/up', '/metrics', '/up'] }).excludeMetricsPaths).toEqual(['/up', '/metrics'])
  })

  it('keeps explicit options', () => {
    const spec = normalizeServiceSpec({
      targets: ['web:3000'],
      healthCheck: { path: '/health', intervalMs: 100, timeoutMs: 200 },
      targetTimeoutMs: 500,
      drainTimeoutMs: 0,
    })
    expect(spec.healthCheck).toEqual({ path: '/health', intervalMs: 100, timeoutMs: 200 })
    expect(spec.targetTimeoutMs).toBe(500)
    expect(spec.drainTimeoutMs).toBe(0)
  })

  it.each([
    ['no targets', { targets: [] }, InvalidOptionError],
    ['a target with port 0', { targets: ['web:0'] }, InvalidTargetError],
    ['a target with port 70000', { targets: ['web:70000'] }, InvalidTargetError],
    ['a target without port', { targets: ['web'] }, InvalidTargetError],
    ['a host with a space', { targets: ['web:1'], hosts: ['bad host'] }, InvalidHostError],
    ['a host with an underscore', { targets: ['web:1'], hosts: ['my_app.com'] }, InvalidHostError],
    ['a nested wildcard host', { targets: ['web:1'], hosts: ['*.*.com'] }, InvalidHostError],
    ['a bad service name', { targets: ['web:1'], name: 'has space' }, InvalidOptionError],
    ['a relative health-check path', { targets: ['web:1'], healthCheck: { path: 'up' } }, InvalidOptionError],
    ['a zero health-check interval', { targets: ['web:1'], healthCheck: { intervalMs: 0 } }, InvalidOptionError],
    ['a negative target timeout', { targets: ['web:1'], targetTimeoutMs: -1 }, InvalidOptionError],
    ['a NaN drain timeout', { targets: ['web:1'], drainTimeoutMs: Number.NaN }, InvalidOptionError],
  ])('refuses %s', (_case, input, errorClass) => {
    expect(() => normalizeServiceSpec(input)).toThrow(errorClass)
  })
})

describe('normalizeHeaderName', () => {
  it.each([['X-Custom', 'x-custom'], [' CF-Ray ', 'cf-ray'], ['x_odd.name~1', 'x_odd.name~1']])('takes %j as %j', (input, expected) => {
    expect(normalizeHeaderName(input, '--log-request-header')).toBe(expected)
  })

  it.each(['', 'a b', 'x:y', 'x"y', 'é'])('refuses %j', (input) => {
    expect(() => normalizeHeaderName(input, '--log-request-header')).toThrow(InvalidOptionError)
  })
})

describe('splitTarget', () => {
  it.each([
    ['a host name', 'web-1:3000', { host: 'web-1', port: 3000 }],
    ['an IPv4 address', '127.0.0.1:80', { host: '127.0.0.1', port: 80 }],
    ['an IPv6 address, without its brackets', '[::1]:8080', { host: '::1', port: 8080 }],
  ])('%s', (_case, target, expected) => {
    expect(splitTarget(target)).toEqual(expected)
  })
})
