import { hasWriterAffinity, isRead, writerAffinityCookie } from '../src/worker/read-split'

/** 2026-01-01T00:00:00Z, a Thursday. */
const NOW_MS = Date.UTC(2026, 0, 1)
const FUTURE = NOW_MS + 1_000
const PAST = NOW_MS - 1_000

describe('isRead', () => {
  it.each([
    ['GET', true],
    ['HEAD', true],
    ['POST', false],
    ['PUT', false],
    ['PATCH', false],
    ['DELETE', false],
    ['OPTIONS', false],
    ['CONNECT', false],
    ['TRACE', false],
    // Methods are case-sensitive: `get` is another method, not a read.
    ['get', false],
    ['head', false],
    ['Get', false],
    ['GETS', false],
    ['', false],
    [undefined, false],
  ])('%j → %j', (method, expected) => {
    expect(isRead(method)).toBe(expected)
  })
})

describe('writerAffinityCookie', () => {
  it.each([
    ['one second', 1_000, 'kamal-writer=1767225601000; Path=/; Expires=Thu, 01 Jan 2026 00:00:02 GMT; HttpOnly'],
    ['a fraction of a second (Expires keeps whole seconds)', 2_500, 'kamal-writer=1767225602500; Path=/; Expires=Thu, 01 Jan 2026 00:00:03 GMT; HttpOnly'],
    ['a minute', 60_000, 'kamal-writer=1767225660000; Path=/; Expires=Thu, 01 Jan 2026 00:01:01 GMT; HttpOnly'],
  ])('for a timeout of %s', (_case, timeoutMs, expected) => {
    expect(writerAffinityCookie(NOW_MS, timeoutMs)).toBe(expected)
  })

  it('carries an expiry that hasWriterAffinity honours until it passes', () => {
    const value = writerAffinityCookie(NOW_MS, 1_000).split(';')[0]
    expect(hasWriterAffinity(value, NOW_MS)).toBe(true)
    expect(hasWriterAffinity(value, NOW_MS + 999)).toBe(true)
    expect(hasWriterAffinity(value, NOW_MS + 1_000)).toBe(false)
  })
})

describe('hasWriterAffinity', () => {
  it.each([
    ['no Cookie header', false, undefined],
    ['an empty Cookie header', false, ''],
    ['other cookies only', false, 'session=abc; theme=dark'],
    ['a future expiry alone', true, `kamal-writer=${FUTURE}`],
    ['an expiry one millisecond ahead', true, `kamal-writer=${NOW_MS + 1}`],
    ['an expiry equal to now', false, `kamal-writer=${NOW_MS}`],
    ['a past expiry', false, `kamal-writer=${PAST}`],
    ['a future expiry among other cookies', true, `a=1; kamal-writer=${FUTURE}; b=2`],
    ['a past expiry among other cookies', false, `a=1; kamal-writer=${PAST}; b=2`],
    ['a future expiry after a separator without a space', true, `a=1;kamal-writer=${FUTURE}`],
    ['a future expiry last', true, `a=1; b=2; kamal-writer=${FUTURE}`],
    ['a lookalike name ending in kamal-writer', false, `xkamal-writer=${FUTURE}`],
    ['a lookalike name starting with kamal-writer', false, `kamal-writer-old=${FUTURE}`],
    ['a lookalike before an expired real one', false, `xkamal-writer=${FUTURE}; kamal-writer=${PAST}`],
    ['a lookalike before a live real one', true, `xkamal-writer=${PAST}; kamal-writer=${FUTURE}`],
    ['the name as another cookie\'s value', false, `a=kamal-writer=${FUTURE}`],
    ['an empty value', false, 'kamal-writer='],
    ['a word', false, 'kamal-writer=abc'],
    ['a decimal', false, `kamal-writer=${FUTURE}.5`],
    ['digits followed by letters', false, `kamal-writer=${FUTURE}abc`],
    ['a negative number', false, 'kamal-writer=-1'],
  ])('%s → %j', (_case, expected, header) => {
    expect(hasWriterAffinity(header, NOW_MS)).toBe(expected)
  })
})
