import { HeaderLog, logFieldName, requestHeaderValue, responseHeaderValue, type HeaderValues } from '../src/worker/header-log'

describe('logFieldName', () => {
  it.each<['req' | 'resp', string, string]>([
    ['req', 'x-custom', 'req_x_custom'],
    ['req', 'X-Custom-ID', 'req_x_custom_id'],
    ['resp', 'Cache-Control', 'resp_cache_control'],
    ['resp', 'etag', 'resp_etag'],
    ['req', 'x.odd~name', 'req_x.odd~name'],
  ])('%s %j → %j', (prefix, header, expected) => {
    expect(logFieldName(prefix, header)).toBe(expected)
  })
})

describe('requestHeaderValue', () => {
  const raw = ['Host', 'a.test', 'X-Custom', 'one', 'x-custom', 'two', 'X-Customer', 'no', 'Empty', '']
  it.each([
    ['one value', 'host', 'a.test'],
    ['every value of a repeated header, whatever its case, joined by ","', 'x-custom', 'one,two'],
    ['"" for an absent header', 'x-missing', ''],
    ['"" for an empty header', 'empty', ''],
  ])('%s', (_case, name, expected) => {
    expect(requestHeaderValue(raw, name)).toBe(expected)
  })
})

describe('responseHeaderValue', () => {
  const headers: HeaderValues = { 'cache-control': 'public, max-age=60', 'set-cookie': ['a=1', 'b=2'], 'content-length': 0 }
  it.each<[string, HeaderValues | undefined, string, string]>([
    ['a value', headers, 'cache-control', 'public, max-age=60'],
    ['a list, joined by ","', headers, 'set-cookie', 'a=1,b=2'],
    ['a number', headers, 'content-length', '0'],
    ['"" for an absent header', headers, 'etag', ''],
    ['"" when there was no response head', undefined, 'etag', ''],
  ])('%s', (_case, values, name, expected) => {
    expect(responseHeaderValue(values, name)).toBe(expected)
  })
})

describe('HeaderLog', () => {
  it('is not made for a service that logs no header', () => {
    expect(HeaderLog.for([], [])).toBeUndefined()
  })

  it('writes its fields as a JSON fragment, values escaped', () => {
    const log = HeaderLog.for(['x-custom', 'x-missing'], ['cache-control'])!
    const fields = log.fields(['X-Custom', 'say "hi"\\\u0001'], { 'cache-control': 'no-store' })
    expect(JSON.parse(`{"a":1${fields}}`)).toEqual({ a: 1, req_x_custom: 'say "hi"\\\u0001', req_x_missing: '', resp_cache_control: 'no-store' })
  })
})
