import { InvalidSizeError } from '../errors'

/** The largest byte count held exactly (2^53-1, about 8 PiB). */
export const MAX_SIZE_BYTES = Number.MAX_SAFE_INTEGER

/** Decimal units are powers of 1000, binary ones (with an `i`) powers of 1024, as in IEC 80000-13. */
const UNIT_BYTES: Record<string, number> = {
  b: 1,
  kb: 1_000, mb: 1_000_000, gb: 1_000_000_000,
  kib: 1_024, mib: 1_048_576, gib: 1_073_741_824,
}
/** Largest first: formatSize picks the first unit that divides the count. */
const FORMAT_UNITS: Array<[string, number]> = [
  ['GiB', UNIT_BYTES.gib], ['MiB', UNIT_BYTES.mib], ['KiB', UNIT_BYTES.kib],
  ['GB', UNIT_BYTES.gb], ['MB', UNIT_BYTES.mb], ['KB', UNIT_BYTES.kb],
]
const SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i
const EXPECTED = 'expected a size like 1048576, 512KiB or 1.5MB'

/**
 * Parses a byte count: `1048576`, `512KiB`, `1.5MB`, `0`. Units are case-insensitive: B, KB, MB,
 * GB (powers of 1000) and KiB, MiB, GiB (powers of 1024). A fraction needs a unit and is rounded
 * to the nearest byte. `K`, `M` and `G` alone are refused: nginx reads `1m` as 1 MiB, others as
 * 1 MB.
 */
export function parseSize(text: string, name = 'size'): number {
  const input = text.trim()
  const match = SIZE.exec(input)
  if (!match) throw new InvalidSizeError(`invalid ${name} "${input}": ${EXPECTED}`)
  const [, number, unitText] = match
  const unit = unitText.toLowerCase()
  if (unit === 'k' || unit === 'm' || unit === 'g') {
    const upper = unit.toUpperCase()
    throw new InvalidSizeError(`invalid ${name} "${input}": ambiguous unit "${unitText}" (use ${number}${upper}B for powers of 1000 or ${number}${upper}iB for powers of 1024)`)
  }
  if (unit !== '' && !(unit in UNIT_BYTES)) throw new InvalidSizeError(`invalid ${name} "${input}": unknown unit "${unitText}" (use B, KB, MB, GB, KiB, MiB or GiB)`)
  if ((unit === '' || unit === 'b') && number.includes('.')) throw new InvalidSizeError(`invalid ${name} "${input}": a byte count is whole (a fraction takes a larger unit, e.g. ${number}MB)`)
  return checkSize(Math.round(Number(number) * (UNIT_BYTES[unit] ?? 1)), name, input)
}

/** Refuses a byte count that is not a whole, non-negative, exactly held number, with a one-line error. */
export function checkSize(bytes: number, name: string, input = String(bytes)): number {
  if (!Number.isInteger(bytes) || bytes < 0) throw new InvalidSizeError(`invalid ${name} "${input}": must be a whole number of bytes, 0 or more`)
  if (bytes > MAX_SIZE_BYTES) throw new InvalidSizeError(`invalid ${name} "${input}": at most ${MAX_SIZE_BYTES} bytes`)
  return bytes
}

/** Formats a byte count the way it is typed, exactly: 1048576 → "1MiB", 1500000 → "1500KB", 10 → "10". */
export function formatSize(bytes: number): string {
  if (bytes === 0) return '0'
  for (const [unit, size] of FORMAT_UNITS) {
    if (bytes % size === 0) return `${bytes / size}${unit}`
  }
  return String(bytes)
}
