/**
 * Structured JSON-line logging on stdout. Lifecycle events are written at once; request lines
 * are batched (`logBuffered`) so the request path does not pay a write syscall per request.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

const FLUSH_INTERVAL_MS = 100
const FLUSH_BYTES = 64 * 1024

let debugEnabled = process.env.MPROXY_DEBUG === '1'
let pending = ''
let flushTimer: NodeJS.Timeout | undefined

export function setDebug(enabled: boolean): void {
  debugEnabled = enabled
}

export function isDebug(): boolean {
  return debugEnabled
}

export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  if (level === 'debug' && !debugEnabled) return
  flushLogs()
  process.stdout.write(formatLine(level, msg, fields))
}

/** Queues a line and writes the batch within FLUSH_INTERVAL_MS, or sooner once it is large. */
export function logBuffered(level: LogLevel, msg: string, fields: Record<string, unknown>): void {
  pending += formatLine(level, msg, fields)
  if (pending.length >= FLUSH_BYTES) flushLogs()
  else if (!flushTimer) flushTimer = setTimeout(flushLogs, FLUSH_INTERVAL_MS).unref()
}

export function flushLogs(): void {
  if (flushTimer) clearTimeout(flushTimer)
  flushTimer = undefined
  if (pending === '') return
  const batch = pending
  pending = ''
  process.stdout.write(batch)
}

function formatLine(level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  return JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n'
}

process.once('exit', flushLogs)
