import { InvalidDurationError } from '../errors'

/**
 * The longest delay a Node timer holds (2^31-1 ms, about 24.8 days): a longer one fires at once.
 * Every duration is checked against it where it is parsed, not where it is used.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y

/**
 * Parses Go-style durations (`500ms`, `5s`, `1m30s`, `0`) into milliseconds, as kamal-proxy
 * accepts them. A bare number other than 0 is refused: `30` could mean seconds or milliseconds.
 */
export function parseDuration(text: string, name = 'duration'): number {
  const input = text.trim()
  if (input === '0') return 0
  if (input === '') throw new InvalidDurationError(`invalid ${name} "": expected a duration like 500ms, 5s or 1m30s`)
  if (/^\d+(\.\d+)?$/.test(input)) {
    throw new InvalidDurationError(`invalid ${name} "${input}": missing unit (use e.g. ${input}s or ${input}ms)`)
  }
  let total = 0
  PART.lastIndex = 0
  while (PART.lastIndex < input.length) {
    const start = PART.lastIndex
    const match = PART.exec(input)
    if (!match || match.index !== start) {
      throw new InvalidDurationError(`invalid ${name} "${input}": expected a duration like 500ms, 5s or 1m30s`)
    }
    total += Number(match[1]) * UNIT_MS[match[2]]
  }
  return checkDuration(Math.round(total), name, input)
}

/** Refuses a duration no timer can wait for, with a one-line error. */
export function checkDuration(ms: number, name: string, input = formatDuration(ms)): number {
  if (ms > MAX_DURATION_MS) {
    throw new InvalidDurationError(`invalid ${name} "${input}": at most ${formatDuration(MAX_DURATION_MS)} (the longest a timer can wait)`)
  }
  return ms
}

/** A sum of durations, as a timer delay: capped so that it cannot overflow into "at once". */
export function timerDelay(ms: number): number {
  return Math.min(ms, MAX_DURATION_MS)
}

/** Formats milliseconds the way they are typed: 1500 → "1.5s", 90000 → "1m30s", 20 → "20ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  const hours = Math.floor(ms / 3_600_000)
  const minutes = Math.floor((ms % 3_600_000) / 60_000)
  const seconds = (ms % 60_000) / 1000
  let out = ''
  if (hours) out += `${hours}h`
  if (minutes) out += `${minutes}m`
  if (seconds || !out) out += `${Number(seconds.toFixed(3))}s`
  return out
}
