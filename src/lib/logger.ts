/**
 * Structured JSON-line logging on stdout. Lifecycle events are written at once; request lines
 * are batched (`logBufferedLine`) so the request path does not pay a write syscall per request.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

const FLUSH_INTERVAL_MS = 100
const FLUSH_BYTES = 64 * 1024

let debugEnabled = process.env.MPROXY_DEBUG === '1'
// Request lines are copied into a buffer at once, so their strings die young instead of
// surviving garbage collections until the next flush.
let pending = Buffer.allocUnsafe(FLUSH_BYTES)
let pendingBytes = 0
let flushTimer: NodeJS.Timeout | undefined
let clockMs = 0
let clockIso = ''

export function setDebug(enabled: boolean): void {
  debugEnabled = enabled
}

export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  if (level === 'debug' && !debugEnabled) return
  flushLogs()
  process.stdout.write(formatLine(level, msg, fields))
}

/**
 * Queues a JSON line that is already formatted (with `isoTime`) and writes the batch
 * within FLUSH_INTERVAL_MS, or sooner once it is large.
 */
export function logBufferedLine(line: string): void {
  // Worst case of UTF-8: three bytes per UTF-16 unit.
  if (pendingBytes + line.length * 3 > pending.length) flushLogs()
  pendingBytes += pending.write(line, pendingBytes)
  if (!flushTimer) flushTimer = setTimeout(flushLogs, FLUSH_INTERVAL_MS).unref()
}

export function flushLogs(): void {
  if (flushTimer) clearTimeout(flushTimer)
  flushTimer = undefined
  if (pendingBytes === 0) return
  const batch = pending.subarray(0, pendingBytes)
  pending = Buffer.allocUnsafe(FLUSH_BYTES)
  pendingBytes = 0
  process.stdout.write(batch)
}

/** The current time as ISO 8601, formatted at most once per millisecond. */
export function isoTime(): string {
  const now = Date.now()
  if (now !== clockMs) {
    clockMs = now
    clockIso = new Date(now).toISOString()
  }
  return clockIso
}

function formatLine(level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  return JSON.stringify({ time: isoTime(), level, msg, ...fields }) + '\n'
}

process.once('exit', flushLogs)
