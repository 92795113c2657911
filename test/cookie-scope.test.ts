import { scopeCookies } from '../src/worker/cookie-scope'

describe('scopeCookies', () => {
  it.each([
    ['no path', 'session=abc', 'session=abc; Path=/api'],
    ['the root path', 'session=abc; Path=/; HttpOnly', 'session=abc; Path=/api; HttpOnly'],
    ['a sub-path', 'session=abc; path=/admin/', 'session=abc; Path=/api/admin'],
    ['the request host as domain', 'a=1; Domain=app.test; Path=/', 'a=1; Domain=app.test; Path=/api'],
    ['a leading-dot domain equal to the host', 'a=1; Domain=.app.test', 'a=1; Domain=.app.test; Path=/api'],
    ['another domain, left alone', 'a=1; Domain=other.test; Path=/', 'a=1; Domain=other.test; Path=/'],
    ['a parent domain, left alone', 'a=1; Domain=test; Path=/', 'a=1; Domain=test; Path=/'],
  ])('%s', (_case, cookie, expected) => {
    expect(scopeCookies([cookie], '/api', 'app.test')).toEqual([expected])
  })
})
