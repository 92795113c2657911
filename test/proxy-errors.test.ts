import { classifyProxyError, isRetryable, upstreamErrorKind } from '../src/worker/proxy-errors'

const error = (code: string) => Object.assign(new Error(code), { code })

describe('classifyProxyError', () => {
  it.each([
    ['refused', 'ECONNREFUSED', false, 502],
    ['reset by the upstream', 'ECONNRESET', false, 502],
    ['the upstream closed its socket', 'UND_ERR_SOCKET', false, 502],
    ['unknown host', 'ENOTFOUND', false, 502],
    ['connect timeout', 'UND_ERR_CONNECT_TIMEOUT', false, 504],
    ['aborted by mproxy (target timeout or drain cut)', 'ECONNRESET', true, 504],
  ])('%s → %d', (_case, code, abortedByProxy, expected) => {
    expect(classifyProxyError(error(code), abortedByProxy)).toBe(expected)
  })
})

describe('isRetryable', () => {
  const fresh = { retries: 0, abortReason: undefined, responded: false, hasBody: false, req: { method: 'GET' } }
  it.each<[string, Partial<typeof fresh> & { req?: { method: string } }, string, boolean]>([
    ['a GET on a closed pooled connection', {}, 'UND_ERR_SOCKET', true],
    ['a DELETE reset by the upstream', { req: { method: 'DELETE' } }, 'ECONNRESET', true],
    ['a POST', { req: { method: 'POST' } }, 'UND_ERR_SOCKET', false],
    ['a PUT with a body', { req: { method: 'PUT' }, hasBody: true }, 'UND_ERR_SOCKET', false],
    ['a second failure', { retries: 1 }, 'UND_ERR_SOCKET', false],
    ['a refused connection (nothing was sent)', {}, 'ECONNREFUSED', true],
    ['a POST whose connection was refused', { req: { method: 'POST' } }, 'ECONNREFUSED', true],
    ['a POST with a body whose connection was refused', { req: { method: 'POST' }, hasBody: true }, 'ECONNREFUSED', false],
    ['a second refusal', { retries: 1 }, 'ECONNREFUSED', false],
    ['a request already answered', { responded: true }, 'UND_ERR_SOCKET', false],
    ['a request mproxy aborted (target timeout)', { abortReason: 'timeout' as never }, 'UND_ERR_SOCKET', false],
  ])('%s: %p', (_case, overrides, code, expected) => {
    const exchange = { ...fresh, ...overrides } as unknown as Parameters<typeof isRetryable>[0]
    expect(isRetryable(exchange, error(code))).toBe(expected)
  })
})

describe('upstreamErrorKind', () => {
  it.each<[string, string, 'timeout' | 'drain' | undefined, string]>([
    ['refused', 'ECONNREFUSED', undefined, 'refused'],
    ['reset by the upstream', 'ECONNRESET', undefined, 'reset'],
    ['the upstream closed its socket', 'UND_ERR_SOCKET', undefined, 'reset'],
    ['a broken pipe', 'EPIPE', undefined, 'reset'],
    ['unknown host', 'ENOTFOUND', undefined, 'unresolved'],
    ['connect timeout', 'UND_ERR_CONNECT_TIMEOUT', undefined, 'timeout'],
    ['a response that stalled', 'UND_ERR_BODY_TIMEOUT', undefined, 'timeout'],
    ['the target timeout', 'ECONNRESET', 'timeout', 'timeout'],
    ['a cut at the end of a drain', 'ECONNRESET', 'drain', 'drain'],
    ['anything else', 'UND_ERR_INVALID_ARG', undefined, 'other'],
  ])('%s → %s', (_case, code, abortReason, expected) => {
    expect(upstreamErrorKind(error(code), abortReason)).toBe(expected)
  })
})
