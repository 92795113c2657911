import {
  GoValueError, formatGoDuration, nanosToMs, parseGoBool, parseGoDecimal, parseGoDuration, parseGoInt, readCsvRecord,
} from '../src/kamal/go-values'

const MS = 1_000_000n
const S = 1_000n * MS

describe('Go durations (kamal-proxy flags)', () => {
  it.each<[string, bigint]>([
    ['0', 0n],
    ['-0', 0n],
    ['300ms', 300n * MS],
    ['5s', 5n * S],
    ['1m30s', 90n * S],
    ['2h', 7200n * S],
    ['1.5s', 1500n * MS],
    ['.5s', 500n * MS],
    ['1.s', S],
    ['1h2m3s4ms5us6ns', 3_723_004_005_006n],
    ['10µs', 10_000n],
    ['10μs', 10_000n],
    ['-2s', -2n * S],
    ['+2s', 2n * S],
  ])('reads %s', (text, nanos) => {
    expect(parseGoDuration(text)).toBe(nanos)
  })

  it.each([
    ['30', 'time: missing unit in duration "30"'],
    ['1.5', 'time: missing unit in duration "1.5"'],
    ['5x', 'time: unknown unit "x" in duration "5x"'],
    ['5sec', 'time: unknown unit "sec" in duration "5sec"'],
    ['', 'time: invalid duration ""'],
    ['s', 'time: invalid duration "s"'],
    ['.s', 'time: invalid duration ".s"'],
    ['-', 'time: invalid duration "-"'],
    ['1s-2s', 'time: unknown unit "s-" in duration "1s-2s"'],
    ['9999999999h', 'time: invalid duration "9999999999h"'],
  ])('refuses %j as Go does', (text, message) => {
    expect(() => parseGoDuration(text)).toThrow(GoValueError)
    expect(() => parseGoDuration(text)).toThrow(message)
  })

  it.each<[bigint, string]>([
    [0n, '0s'],
    [30n * S, '30s'],
    [60n * S, '1m0s'],
    [90n * S, '1m30s'],
    [3600n * S, '1h0m0s'],
    [1500n * MS, '1.5s'],
    [20n * MS, '20ms'],
    [1500n, '1.5µs'],
    [7n, '7ns'],
    [-5n * S, '-5s'],
  ])('prints %s ns as %s', (nanos, text) => {
    expect(formatGoDuration(nanos)).toBe(text)
  })

  it.each<[bigint, number]>([[0n, 0], [1n, 1], [MS, 1], [1500n * MS, 1500], [MS + 1n, 2]])('makes %s ns %s ms, never rounding a positive one to 0', (nanos, ms) => {
    expect(nanosToMs(nanos)).toBe(ms)
  })
})

describe('Go integers and booleans', () => {
  it.each([['80', 80], ['-1', -1], ['+7', 7], ['0x1f', 31], ['0o17', 15], ['017', 15], ['0b101', 5], ['1_000', 1000], ['0', 0]])('reads %s as pflag does', (text, value) => {
    expect(parseGoInt(text)).toBe(value)
  })

  it.each([
    ['abc', 'strconv.ParseInt: parsing "abc": invalid syntax'],
    ['1.5', 'strconv.ParseInt: parsing "1.5": invalid syntax'],
    ['', 'strconv.ParseInt: parsing "": invalid syntax'],
    ['08', 'strconv.ParseInt: parsing "08": invalid syntax'],
    ['1__0', 'strconv.ParseInt: parsing "1__0": invalid syntax'],
    ['99999999999999999999', 'strconv.ParseInt: parsing "99999999999999999999": value out of range'],
  ])('refuses %j', (text, message) => {
    expect(() => parseGoInt(text)).toThrow(message)
  })

  it.each([['8080', 8080], ['-3', -3], ['0x10', undefined], ['1_000', undefined], ['', undefined], ['80a', undefined]])('reads the environment value %j in base 10 only', (text, value) => {
    expect(parseGoDecimal(text)).toBe(value)
  })

  it.each([['1', true], ['t', true], ['T', true], ['TRUE', true], ['true', true], ['True', true], ['0', false], ['f', false], ['F', false], ['FALSE', false], ['false', false], ['False', false]])('reads %s as %s', (text, value) => {
    expect(parseGoBool(text)).toBe(value)
  })

  it.each(['yes', 'no', 'tRUE', '', 'on'])('refuses the boolean %j', (text) => {
    expect(() => parseGoBool(text)).toThrow(`strconv.ParseBool: parsing ${JSON.stringify(text)}: invalid syntax`)
  })
})

describe('comma-separated list values', () => {
  it.each<[string, string[]]>([
    ['', []],
    ['a', ['a']],
    ['a,b', ['a', 'b']],
    ['a,', ['a', '']],
    [' a, b', [' a', ' b']],
    ['"a,b",c', ['a,b', 'c']],
    ['"say ""hi"""', ['say "hi"']],
  ])('reads %j', (text, items) => {
    expect(readCsvRecord(text)).toEqual(items)
  })

  it.each([
    ['a"b', 'parse error on line 1, column 2: bare " in non-quoted-field'],
    ['"ab', 'extraneous or missing " in quoted-field'],
    ['"a"b', 'extraneous or missing " in quoted-field'],
  ])('refuses %j', (text, message) => {
    expect(() => readCsvRecord(text)).toThrow(message)
  })
})
