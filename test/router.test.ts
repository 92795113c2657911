import { HostRouter, hostOnly } from '../src/worker/router'

describe('HostRouter', () => {
  const services = [
    { name: 'app', hosts: ['app.example.com', 'www.example.com'] },
    { name: 'tenants', hosts: ['*.example.com'] },
    { name: 'api', hosts: ['api.example.com'] },
    { name: 'fallback', hosts: [] },
  ]
  const router = new HostRouter(services)

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
    expect(router.match(host)?.name).toBe(expected)
  })

  it('answers nothing when no service matches and there is no default', () => {
    const strict = new HostRouter([{ name: 'app', hosts: ['app.example.com'] }])
    expect(strict.match('other.example.com')).toBeUndefined()
    expect(strict.match(undefined)).toBeUndefined()
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
