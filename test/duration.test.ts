import { InvalidDurationError } from '../src/errors'
import { formatDuration, parseDuration } from '../src/lib/duration'

describe('parseDuration', () => {
  it.each([
    ['milliseconds', '500ms', 500],
    ['seconds', '5s', 5_000],
    ['minutes and seconds', '1m30s', 90_000],
    ['bare zero', '0', 0],
    ['zero with a unit', '0s', 0],
    ['fractional seconds', '1.5s', 1_500],
    ['hours', '1h', 3_600_000],
    ['microseconds, rounded', '1500us', 2],
    ['surrounding whitespace', ' 5s ', 5_000],
    ['the longest a timer holds', '596h31m23.647s', 2 ** 31 - 1],
  ])('accepts %s (%j)', (_case, text, expectedMs) => {
    expect(parseDuration(text)).toBe(expectedMs)
  })

  it.each([
    ['a bare number (unit is ambiguous)', '30', /missing unit/],
    ['an empty string', '', /expected a duration/],
    ['an unknown unit', '5x', /expected a duration/],
    ['a unit without a number', 's', /expected a duration/],
    ['a negative duration', '-1s', /expected a duration/],
    ['upper-case units', '5S', /expected a duration/],
    ['spaces between parts', '1m 30s', /expected a duration/],
    ['more than a timer holds (hours)', '1000h', /at most 596h31m23\.647s \(the longest a timer can wait\)/],
    ['more than a timer holds (by a millisecond)', '596h31m23.648s', /at most 596h31m23\.647s/],
  ])('refuses %s (%j)', (_case, text, message) => {
    expect(() => parseDuration(text)).toThrow(InvalidDurationError)
    expect(() => parseDuration(text)).toThrow(message)
  })

  it('names the option in its error message', () => {
    expect(() => parseDuration('30', 'drain timeout')).toThrow(/^invalid drain timeout "30"/)
  })

  it('carries a stable error code', () => {
    expect.assertions(1)
    try {
      parseDuration('5x')
    } catch (err) {
      expect((err as InvalidDurationError).code).toBe('MPROXY_ERR_INVALID_DURATION')
    }
  })
})

describe('formatDuration', () => {
  it.each([
    ['zero', 0, '0ms'],
    ['milliseconds', 500, '500ms'],
    ['just under a second', 999, '999ms'],
    ['one second', 1_000, '1s'],
    ['fractional seconds', 1_500, '1.5s'],
    ['millisecond precision', 1_234, '1.234s'],
    ['whole minutes', 60_000, '1m'],
    ['minutes and seconds', 90_000, '1m30s'],
    ['hours, minutes and seconds', 3_661_000, '1h1m1s'],
  ])('formats %s (%d ms) as %j', (_case, ms, text) => {
    expect(formatDuration(ms)).toBe(text)
  })

  it.each([0, 20, 500, 1_000, 1_500, 5_000, 90_000, 3_661_000])('round-trips %d ms through parseDuration', (ms) => {
    expect(parseDuration(formatDuration(ms))).toBe(ms)
  })
})
