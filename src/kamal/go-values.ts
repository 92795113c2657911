/**
 * Values as kamal-proxy's command line reads and prints them (Go's `time`, `strconv` and the
 * CSV reader behind pflag's list flags), with Go's error texts: Kamal and its users see them.
 * Durations are bigint nanoseconds, as Go keeps them.
 */

/** A value Go would refuse; the message is Go's, e.g. `time: missing unit in duration "30"`. */
export class GoValueError extends Error {}

const NANOS_PER_UNIT: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5 micro sign
  'μs': 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
}
const MAX_INT64 = 2n ** 63n - 1n

/** Go's `strconv.Quote` for the text these messages quote: printable ASCII, with `"` and `\` escaped. */
export function goQuote(text: string): string {
  return JSON.stringify(text)
}

/** `time.ParseDuration`: `300ms`, `1m30s`, `1.5h`, `-2s`, `0`; a bare number other than 0 has no unit. */
export function parseGoDuration(input: string): bigint {
  const invalid = () => new GoValueError(`time: invalid duration ${goQuote(input)}`)
  let rest = input
  let negative = false
  if (rest.startsWith('-') || rest.startsWith('+')) {
    negative = rest[0] === '-'
    rest = rest.slice(1)
  }
  if (rest === '0') return 0n
  if (rest === '') throw invalid()
  let total = 0n
  while (rest !== '') {
    const number = /^(\d*)(?:\.(\d*))?/.exec(rest)!
    const [whole, integer, fraction = ''] = number
    if (integer === '' && fraction === '') throw invalid()
    rest = rest.slice(whole.length)
    const unit = /^[^\d.]*/.exec(rest)![0]
    if (unit === '') throw new GoValueError(`time: missing unit in duration ${goQuote(input)}`)
    const scale = NANOS_PER_UNIT[unit]
    if (scale === undefined) throw new GoValueError(`time: unknown unit ${goQuote(unit)} in duration ${goQuote(input)}`)
    rest = rest.slice(unit.length)
    total += BigInt(integer || '0') * scale
    if (fraction !== '') total += (BigInt(fraction) * scale) / 10n ** BigInt(fraction.length)
    if (total > MAX_INT64 + (negative ? 1n : 0n)) throw invalid()
  }
  return negative ? -total : total
}

/** `time.Duration.String`: `30s`, `1m0s`, `1h0m0s`, `1.5s`, `500ms`, `0s`. */
export function formatGoDuration(nanos: bigint): string {
  if (nanos === 0n) return '0s'
  const sign = nanos < 0n ? '-' : ''
  const abs = nanos < 0n ? -nanos : nanos
  if (abs < 1_000_000_000n) {
    const [unit, scale] = abs < 1_000n ? ['ns', 1n] : abs < 1_000_000n ? ['µs', 1_000n] : ['ms', 1_000_000n]
    return `${sign}${decimal(abs, scale)}${unit}`
  }
  const hours = abs / NANOS_PER_UNIT.h
  const minutes = (abs % NANOS_PER_UNIT.h) / NANOS_PER_UNIT.m
  const seconds = decimal(abs % NANOS_PER_UNIT.m, NANOS_PER_UNIT.s)
  if (hours > 0n) return `${sign}${hours}h${minutes}m${seconds}s`
  if (minutes > 0n) return `${sign}${minutes}m${seconds}s`
  return `${sign}${seconds}s`
}

/** `value / scale` in decimal, without trailing zeros: 1500/1000 → `1.5`. */
function decimal(value: bigint, scale: bigint): string {
  const whole = value / scale
  const fraction = value % scale
  if (fraction === 0n) return `${whole}`
  const digits = scale.toString().length - 1
  return `${whole}.${fraction.toString().padStart(digits, '0').replace(/0+$/, '')}`
}

/** Nanoseconds as the milliseconds mproxy counts in; a positive duration never rounds down to 0. */
export function nanosToMs(nanos: bigint): number {
  if (nanos <= 0n) return Number(nanos / 1_000_000n)
  return Number((nanos + 999_999n) / 1_000_000n)
}

/**
 * `strconv.ParseInt(text, 0, 64)`, as pflag reads integer flags: `0x1f`, `0o17`, `0b1`, a
 * leading 0 for octal, underscores between digits.
 */
export function parseGoInt(text: string): number {
  const fail = (why: string) => new GoValueError(`strconv.ParseInt: parsing ${goQuote(text)}: ${why}`)
  const match = /^([+-]?)(0[xX]|0[bB]|0[oO]|0(?=[0-9_]))?([0-9a-fA-F_]+)$/.exec(text)
  if (!match) throw fail('invalid syntax')
  const [, sign, prefix = '', body] = match
  const base = prefix === '' ? 10 : /[xX]/.test(prefix) ? 16 : /[bB]/.test(prefix) ? 2 : 8
  const digitClass = { 2: '[01]', 8: '[0-7]', 10: '[0-9]', 16: '[0-9a-fA-F]' }[base]
  // Underscores only between digits, or right after a base prefix.
  const shape = new RegExp(`^${prefix !== '' ? '_?' : ''}${digitClass}+(_${digitClass}+)*$`)
  if (!shape.test(body)) throw fail('invalid syntax')
  const digits = body.replace(/_/g, '')
  let value = 0n
  for (const digit of digits) value = value * BigInt(base) + BigInt(parseInt(digit, base))
  if (sign === '-') value = -value
  if (value > MAX_INT64 || value < -MAX_INT64 - 1n) throw fail('value out of range')
  return Number(value)
}

/** `strconv.Atoi`: base 10 only, as kamal-proxy reads integers from the environment. */
export function parseGoDecimal(text: string): number | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined
  const value = BigInt(text)
  return value > MAX_INT64 || value < -MAX_INT64 - 1n ? undefined : Number(value)
}

const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True'])
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False'])

/** `strconv.ParseBool`. */
export function parseGoBool(text: string): boolean {
  if (TRUE_WORDS.has(text)) return true
  if (FALSE_WORDS.has(text)) return false
  throw new GoValueError(`strconv.ParseBool: parsing ${goQuote(text)}: invalid syntax`)
}

/**
 * One record of comma-separated values, as pflag's list flags read each value: `a,b`,
 * `"a,b",c` (quotes keep commas), `""` inside quotes for a quote. An empty value is no item.
 */
export function readCsvRecord(text: string): string[] {
  if (text === '') return []
  const fields: string[] = []
  let i = 0
  for (;;) {
    let field = ''
    if (text[i] === '"') {
      const start = i
      i++
      for (;;) {
        if (i >= text.length) throw new GoValueError(`parse error on line 1, column ${start + 1}: extraneous or missing " in quoted-field`)
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"'
            i += 2
            continue
          }
          i++
          break
        }
        field += text[i++]
      }
      if (i < text.length && text[i] !== ',') throw new GoValueError(`parse error on line 1, column ${i + 1}: extraneous or missing " in quoted-field`)
    } else {
      const end = text.indexOf(',', i)
      field = text.slice(i, end === -1 ? text.length : end)
      const quote = field.indexOf('"')
      if (quote !== -1) throw new GoValueError(`parse error on line 1, column ${i + quote + 1}: bare " in non-quoted-field`)
      i += field.length
    }
    fields.push(field)
    if (i >= text.length) return fields
    i++ // the comma
  }
}
