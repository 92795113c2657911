import { Router, hostOnly, stripPrefix } from '../src/worker/router'

describe('Router: hosts', () => {
  const services = [
    { name: 'app', hosts: ['app.example.com', 'www.example.com'], pathPrefixes: ['/'] },
    { name: 'tenants', hosts: ['*.example.com'], pathPrefixes: ['/'] },
    { name: 'api', hosts: ['api.example.com'], pathPrefixes: ['/'] },
    { name: 'fallback', hosts: [], pathPrefixes: ['/'] },
  ]
  const router = new Router(services)

  it.each([
    ['exact host', 'app.example.com', 'app'],
    ['second host of a service', 'www.example.com', 'app'],
    ['exact beats wildcard', 'api.example.com', 'api'],
    ['case-insensitive', 'APP.Example.COM', 'app'],
    ['port ignored', 'app.example.com:8080', 'app'],
    ['trailing dot ignored', 'app.example.com.', 'app'],
    ['one-label wildcard', 'acme.example.com', 'tenants'],
    ['wildcard does not match two labels', 'a.b.example.com', 'fallback'],
    ['wildcard does not match the bare domain', 'example.com', 'fallback'],
    ['unknown host falls back', 'other.org', 'fallback'],
    ['missing Host falls back', undefined, 'fallback'],
    ['IPv6 literal with port', '[::1]:80', 'fallback'],
  ])('%s: %s → %s', (_case, host, expected) => {
    expect(router.match(host, '/')?.service.name).toBe(expected)
  })

  it('answers nothing when no service matches and there is no default', () => {
    const strict = new Router([{ name: 'app', hosts: ['app.example.com'], pathPrefixes: ['/'] }])
    expect(strict.match('other.example.com', '/')).toBeUndefined()
    expect(strict.match(undefined, '/')).toBeUndefined()
  })
})

describe('Router: path prefixes', () => {
  // The layout of the reference proxy's routing tests.
  const router = new Router([
    { name: 'root', hosts: ['example.com'], pathPrefixes: ['/'] },
    { name: 'api', hosts: ['example.com'], pathPrefixes: ['/api'] },
    { name: 'special', hosts: ['example.com'], pathPrefixes: ['/api/special'] },
    { name: 'other-api', hosts: ['other.example.com'], pathPrefixes: ['/api'] },
    { name: 'any-api', hosts: [], pathPrefixes: ['/api'] },
    { name: 'any', hosts: [], pathPrefixes: ['/'] },
    { name: 'split', hosts: ['split.example.com'], pathPrefixes: ['/first', '/second'] },
  ])

  it.each([
    ['example.com', '/apiary', 'root', '/'],
    ['example.com', '/api', 'api', '/api'],
    ['example.com', '/api/', 'api', '/api'],
    ['example.com', '/api?page=2', 'api', '/api'],
    ['example.com', '/api/users', 'api', '/api'],
    ['example.com', '/api/special', 'special', '/api/special'],
    ['example.com', '/api/special/x?y', 'special', '/api/special'],
    ['example.com', '/API', 'root', '/'],
    ['second.example.com', '/api/test', 'any-api', '/api'],
    ['second.example.com', '/non-api/test', 'any', '/'],
    ['split.example.com', '/second/x', 'split', '/second'],
    ['split.example.com', '/', undefined, undefined],
    ['other.example.com', '/', undefined, undefined],
  ])('%s%s → %s', (host, target, service, prefix) => {
    const binding = router.match(host, target)
    expect(binding?.service.name).toBe(service)
    expect(binding?.prefix).toBe(prefix)
  })
})

describe('stripPrefix', () => {
  it.each([
    ['/app/show', '/app', '/show'],
    ['/app', '/app', '/'],
    ['/app/', '/app', '/'],
    ['/app?a=b', '/app', '/?a=b'],
    ['/api/internal/something?a=b', '/api/internal', '/something?a=b'],
  ])('%s without %s → %s', (target, prefix, expected) => {
    expect(stripPrefix(target, prefix)).toBe(expected)
  })
})

describe('hostOnly', () => {
  it.each([
    ['App.Example.com:8080', 'app.example.com'],
    ['example.com', 'example.com'],
    ['[::1]:3000', '[::1]'],
    ['[::1]', '[::1]'],
    ['127.0.0.1:80', '127.0.0.1'],
  ])('%s → %s', (input, expected) => {
    expect(hostOnly(input)).toBe(expected)
  })
})
