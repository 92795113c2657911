import { classifyProxyError } from '../src/worker/proxy-errors'

const error = (code: string) => Object.assign(new Error(code), { code })

describe('classifyProxyError', () => {
  it.each([
    ['refused', 'ECONNREFUSED', false, false, 502],
    ['reset by the upstream', 'ECONNRESET', false, false, 502],
    ['unknown host', 'ENOTFOUND', false, false, 502],
    ['connect timeout', 'ETIMEDOUT', false, false, 504],
    ['aborted by mproxy (target timeout or drain cut)', 'ECONNRESET', false, true, 504],
    ['client went away', 'ECONNRESET', true, false, 499],
  ])('%s → %d', (_case, code, clientGone, abortedByProxy, expected) => {
    expect(classifyProxyError(error(code), { clientGone, abortedByProxy })).toBe(expected)
  })
})
