import { InvalidSizeError } from '../src/errors'
import { checkSize, formatSize, parseSize } from '../src/lib/size'

describe('parseSize', () => {
  it.each([
    ['a bare byte count', '1048576', 1_048_576],
    ['zero', '0', 0],
    ['bytes with a unit', '10B', 10],
    ['kilobytes (powers of 1000)', '512KB', 512_000],
    ['kibibytes (powers of 1024)', '512KiB', 524_288],
    ['megabytes', '1MB', 1_000_000],
    ['mebibytes', '1MiB', 1_048_576],
    ['gigabytes', '2GB', 2_000_000_000],
    ['gibibytes', '2GiB', 2_147_483_648],
    ['a fraction with a decimal unit', '1.5MB', 1_500_000],
    ['a fraction with a binary unit', '1.5MiB', 1_572_864],
    ['a fraction rounded to the nearest byte', '1.0005KB', 1_001],
    ['lower-case units', '10mb', 10_000_000],
    ['mixed-case units', '64kIb', 65_536],
    ['a space before the unit', '10 MiB', 10_485_760],
    ['surrounding whitespace', ' 1MB ', 1_000_000],
    ['the largest exact count', '9007199254740991', Number.MAX_SAFE_INTEGER],
  ])('accepts %s (%j)', (_case, text, bytes) => {
    expect(parseSize(text)).toBe(bytes)
  })

  it.each([
    ['an empty string', '', /expected a size like 1048576, 512KiB or 1\.5MB/],
    ['a negative size', '-1MB', /expected a size/],
    ['a unit alone', 'MB', /expected a size/],
    ['exponent notation', '1e6', /expected a size/],
    ['hexadecimal', '0x10', /expected a size/],
    ['an unknown unit', '1TB', /unknown unit "TB" \(use B, KB, MB, GB, KiB, MiB or GiB\)/],
    ['bits', '1Mbit', /unknown unit "Mbit"/],
    ['an ambiguous one-letter unit (nginx reads it as binary)', '10M', /ambiguous unit "M" \(use 10MB for powers of 1000 or 10MiB for powers of 1024\)/],
    ['an ambiguous lower-case k', '512k', /ambiguous unit "k" \(use 512KB .* or 512KiB/],
    ['a fraction of a byte', '1.5', /a byte count is whole \(a fraction takes a larger unit, e.g\. 1\.5MB\)/],
    ['a fraction of a byte with B', '2.5B', /a byte count is whole/],
    ['two numbers', '1MB 2MB', /expected a size/],
    ['more than is held exactly', '9007199254740992', /at most 9007199254740991 bytes/],
    ['a huge count in a large unit', '99999999999GiB', /at most 9007199254740991 bytes/],
  ])('refuses %s (%j)', (_case, text, message) => {
    expect(() => parseSize(text)).toThrow(InvalidSizeError)
    expect(() => parseSize(text)).toThrow(message)
  })

  it('names the option in a one-line error with a stable code', () => {
    expect(() => parseSize('10M', 'max request body')).toThrow(/^invalid max request body "10M": [^\n]+$/)
    expect.assertions(2)
    try {
      parseSize('x')
    } catch (err) {
      expect((err as InvalidSizeError).code).toBe('MPROXY_ERR_INVALID_SIZE')
    }
  })
})

describe('checkSize', () => {
  it.each([
    ['a negative count', -1, /must be a whole number of bytes, 0 or more/],
    ['a fraction', 1.5, /must be a whole number of bytes/],
    ['not a number', Number.NaN, /must be a whole number of bytes/],
    ['infinity', Number.POSITIVE_INFINITY, /must be a whole number of bytes/],
    ['more than is held exactly', 2 ** 53, /at most 9007199254740991 bytes/],
  ])('refuses %s', (_case, bytes, message) => {
    expect(() => checkSize(bytes, 'buffer memory')).toThrow(message)
  })
})

describe('formatSize', () => {
  it.each([
    ['zero', 0, '0'],
    ['bytes', 10, '10'],
    ['whole kibibytes', 524_288, '512KiB'],
    ['whole mebibytes', 1_048_576, '1MiB'],
    ['one and a half mebibytes, exactly', 1_572_864, '1536KiB'],
    ['whole gibibytes', 2_147_483_648, '2GiB'],
    ['whole megabytes', 1_000_000, '1MB'],
    ['whole kilobytes', 1_500_000, '1500KB'],
    ['whole gigabytes', 3_000_000_000, '3GB'],
    ['neither', 1_000_001, '1000001'],
  ])('formats %s (%d) as %j', (_case, bytes, text) => {
    expect(formatSize(bytes)).toBe(text)
  })

  it.each([0, 1, 999, 1_024, 1_000, 65_536, 1_048_576, 1_500_000, 10_485_760, 2 ** 40, 1_000_001])('round-trips %d through parseSize', (bytes) => {
    expect(parseSize(formatSize(bytes))).toBe(bytes)
  })
})
