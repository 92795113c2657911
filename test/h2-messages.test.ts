import { http1RawHeaders } from '../src/worker/h2-messages'

describe('http1RawHeaders', () => {
  it.each([
    ['Host from :authority, first; pseudo-header fields dropped',
      [':method', 'GET', ':path', '/a?b', ':scheme', 'https', ':authority', 'app.test', 'accept', '*/*'],
      ['host', 'app.test', 'accept', '*/*']],
    [':authority wins over a Host field',
      [':authority', 'app.test:8443', 'host', 'other.test', 'x-a', '1'],
      ['host', 'app.test:8443', 'x-a', '1']],
    ['the Host field when there is no :authority',
      [':method', 'GET', ':path', '/', 'host', 'app.test'],
      ['host', 'app.test']],
    ['no Host at all when the request names no authority',
      [':method', 'GET', ':path', '/', 'accept', '*/*'],
      ['accept', '*/*']],
    ['cookie crumbs joined into one field, in order (RFC 9113 §8.2.3)',
      [':authority', 'app.test', 'cookie', 'a=1', 'x-a', '1', 'cookie', 'b=2', 'cookie', 'c=3'],
      ['host', 'app.test', 'x-a', '1', 'cookie', 'a=1; b=2; c=3']],
    ['repeated fields stay separate',
      [':authority', 'app.test', 'x-a', '1', 'x-a', '2'],
      ['host', 'app.test', 'x-a', '1', 'x-a', '2']],
  ])('%s', (_case, raw, expected) => {
    expect(http1RawHeaders(raw, false)).toEqual(expected)
  })

  it.each([
    ['announced as chunked without Content-Length', [':method', 'POST', ':authority', 'app.test'], ['host', 'app.test', 'transfer-encoding', 'chunked']],
    ['left as it is with Content-Length', [':method', 'POST', ':authority', 'app.test', 'content-length', '5'], ['host', 'app.test', 'content-length', '5']],
  ])('a request body is %s', (_case, raw, expected) => {
    expect(http1RawHeaders(raw, true)).toEqual(expected)
  })
})
