import { originForm, redirectLocation, urlHost, type RedirectRules } from '../src/worker/redirects'

const HTTPS_PORT = 8443
const httpsPort = (): number => HTTPS_PORT
const standardHttpsPort = (): number => 443
const NONE: RedirectRules = { canonicalHost: '', tlsRedirect: false }
const TLS: RedirectRules = { canonicalHost: '', tlsRedirect: true }
const CANONICAL: RedirectRules = { canonicalHost: 'example.com', tlsRedirect: false }
const CANONICAL_TLS: RedirectRules = { canonicalHost: 'example.com', tlsRedirect: true }

describe('redirectLocation', () => {
  it.each<[string, RedirectRules, string, string, boolean, string | undefined]>([
    ['serves when the service redirects nothing', NONE, 'www.example.com', '/x', false, undefined],
    ['serves HTTPS requests of a TLS service', TLS, 'example.com', '/x', true, undefined],
    ['sends plain HTTP to the HTTPS port', TLS, 'Example.com:8080', '/a/b?c=d&e', false, 'https://example.com:8443/a/b?c=d&e'],
    ['serves the canonical host', CANONICAL, 'example.com:8080', '/x', false, undefined],
    ['serves the canonical host whatever its case and trailing dot', CANONICAL, 'EXAMPLE.com.', '/x', false, undefined],
    ['sends another host to the canonical one, keeping the port the client used', CANONICAL, 'www.example.com:8080', '/x?q=1', false, 'http://example.com:8080/x?q=1'],
    ['keeps https for an HTTPS request to another host', CANONICAL, 'www.example.com', '/x', true, 'https://example.com/x'],
    ['keeps the HTTPS port the client used', CANONICAL_TLS, 'www.example.com:8443', '/x', true, 'https://example.com:8443/x'],
    ['combines both redirects into one', CANONICAL_TLS, 'www.example.com:8080', '/x', false, 'https://example.com:8443/x'],
    ['redirects the canonical host to HTTPS only', CANONICAL_TLS, 'example.com', '/x', false, 'https://example.com:8443/x'],
    ['sends a request without Host to the canonical host', CANONICAL, '', '/', false, 'http://example.com/'],
    ['keeps the target byte for byte', CANONICAL, 'www.example.com', '/p%20a;th/%zz?q=a;b;c&p2=%x&&#', false, 'http://example.com/p%20a;th/%zz?q=a;b;c&p2=%x&&#'],
    ['keeps a non-ASCII target as received', CANONICAL, 'www.example.com', '/caf\u00e9', false, 'http://example.com/caf\u00e9'],
    ['uses the path of an absolute-form target', CANONICAL, 'www.example.com', 'http://www.example.com/x?y', false, 'http://example.com/x?y'],
    ['keeps the port of an IPv6 Host', CANONICAL, '[::1]:8080', '/x', false, 'http://example.com:8080/x'],
    ['ignores a Host port that is no number', CANONICAL, 'www.example.com:http', '/x', false, 'http://example.com/x'],
  ])('%s', (_case, rules, host, target, encrypted, expected) => {
    expect(redirectLocation(rules, host, target, encrypted, httpsPort)).toBe(expected)
  })

  it('leaves the HTTPS port out when it is 443', () => {
    expect(redirectLocation(CANONICAL_TLS, 'www.example.com', '/x', false, standardHttpsPort)).toBe('https://example.com/x')
  })

  it('asks for the HTTPS port only when it redirects to HTTPS', () => {
    const port = jest.fn(httpsPort)
    redirectLocation(CANONICAL, 'www.example.com', '/x', false, port)
    redirectLocation(TLS, 'example.com', '/x', true, port)
    expect(port).not.toHaveBeenCalled()
  })
})

describe('originForm', () => {
  it.each([
    ['/a?b', '/a?b'],
    ['http://a.test', '/'],
    ['http://a.test?x', '/?x'],
    ['HTTPS://a.test:8443/p/q?r', '/p/q?r'],
    ['*', '/'],
    ['a.test:443', '/'],
  ])('%j → %j', (target, expected) => {
    expect(originForm(target)).toBe(expected)
  })
})

describe('urlHost', () => {
  it.each([['example.com', 'example.com'], ['10.0.0.1', '10.0.0.1'], ['::1', '[::1]']])('%j → %j', (host, expected) => {
    expect(urlHost(host)).toBe(expected)
  })
})
