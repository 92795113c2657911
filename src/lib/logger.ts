/**
 * Structured JSON-line logging on stdout that can neither block nor stop the process.
 *
 * Lifecycle events (`log`) are formatted by pino; request lines (`logBufferedLine`) arrive already
 * formatted. Both are copied into one batch, in order, and `LogOutput` writes batches with
 * asynchronous `fs.writev` calls on libuv's thread pool, one at a time, so the event loop never waits
 * for whoever reads stdout. Lifecycle events are handed to the output at once; request lines within
 * FLUSH_INTERVAL_MS, or as soon as their batch is full, so the request path pays no write per request.
 *
 * pino's own asynchronous destination (`pino.destination({ sync: false })`, i.e. sonic-boom) is not
 * used: its `flushSync`, which pino also runs on 'exit', retries every write error except EAGAIN
 * forever, 100 ms apart, so with stdout on a full disk or a closed pipe the process never finishes
 * exiting. LogOutput is the same idea with an error policy of its own (see its comment).
 */
import { pino } from 'pino'
import { CLOSED_CODES, LogOutput } from './log-output'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

let clockMs = 0
let clockIso = ''
let failureReported = false

const output = new LogOutput(1, reportFailure, (lines, reason) => log('warn', 'log lines dropped', { lines, reason }))

const logger = pino({
  level: process.env.MPROXY_DEBUG === '1' ? 'debug' : 'info',
  // No pid and hostname on every line.
  base: null,
  timestamp: () => `,"time":"${isoTime()}"`,
  formatters: { level: (label) => ({ level: label }) },
}, output)

export function setDebug(enabled: boolean): void {
  logger.level = enabled ? 'debug' : 'info'
}

export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  logger[level](fields, msg)
}

/**
 * Queues a JSON line that is already formatted (with `isoTime`) and writes the batch
 * within FLUSH_INTERVAL_MS, or sooner once it is large.
 */
export function logBufferedLine(line: string): void {
  output.append(line)
}

/** Writes what is waiting synchronously, as far as stdout takes it: call it right before exiting. */
export function flushLogs(): void {
  output.flushSync()
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

/** One line on stderr, the first time this process cannot write its logs. */
function reportFailure(err: NodeJS.ErrnoException, closed: boolean): void {
  if (failureReported) return
  failureReported = true
  process.stderr.write(JSON.stringify({
    time: isoTime(),
    level: 'error',
    msg: 'cannot write logs to stdout',
    error: err.message,
    pid: process.pid,
    logs: closed ? 'dropped from now on' : 'dropped until stdout takes writes again',
  }) + '\n')
}

// mproxy itself no longer writes to process.stdout, but a dependency could: its failure must not
// be an unhandled 'error' event. stderr is where failures are reported, so its own go unreported.
process.stdout.on('error', (err: NodeJS.ErrnoException) => reportFailure(err, CLOSED_CODES.has(err.code ?? '')))
process.stderr.on('error', () => {})
process.once('exit', flushLogs)
