import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  REPO_ROOT,
  SHORT_TIMEOUT_MS,
  getBody,
  onCleanup,
  request,
  startBackend,
  startProxy,
  waitUntil,
  type LogLine,
  type Proxy,
} from './helpers'

/** Requests sent while stdout is broken; every one must still be answered by the backend. */
const REQUESTS = 200
const WORKERS = 2
const FAILURE_MSG = 'cannot write logs to stdout'
/** Request lines a script logs while its reader does not read: far more than a pipe and the output's queue hold. */
const FLOOD_LINES = 200_000
/** Request lines waiting at an exit: several batches, so some are in the thread pool then. */
const EXIT_LINES = 3_000
/** Request lines logged in one go before a flushLogs: many batches, well under the output's queue limit. */
const IN_FLIGHT_LINES = 20_000

/** The lines a proxy wrote on stderr about its log output, parsed. */
function failureReports(proxy: Proxy): LogLine[] {
  return proxy.stderr().split('\n')
    .filter((line) => line.includes(FAILURE_MSG))
    .map((line) => JSON.parse(line) as LogLine)
}

/** Sends REQUESTS requests, ten at a time, each on a fresh connection, and returns the bodies. */
async function serveRequests(port: number): Promise<string[]> {
  const bodies: string[] = []
  for (let i = 0; i < REQUESTS; i += 10) {
    bodies.push(...await Promise.all(Array.from({ length: 10 }, () => getBody(port))))
  }
  return bodies
}

/** One report per process at most, each naming the error, and at least one. */
async function expectReportedOncePerProcess(proxy: Proxy, code: string): Promise<void> {
  await waitUntil(() => failureReports(proxy).length > 0, SHORT_TIMEOUT_MS, `a ${code} report on stderr`)
  const reports = failureReports(proxy)
  expect(reports.length).toBeLessThanOrEqual(WORKERS + 1)
  expect(new Set(reports.map((report) => report.pid)).size).toBe(reports.length)
  for (const report of reports) expect(String(report.error)).toContain(code)
}

function isIsoTime(value: unknown): boolean {
  return typeof value === 'string' && new Date(value).toISOString() === value
}

interface ScriptRun {
  stdout: string
  stderr: string
  code: number | null
}

/**
 * Runs `script` in a node process that has `log`, `logBufferedLine`, `isoTime`, `setDebug` and
 * `flushLogs` of dist/lib/logger in scope, and `requestLine(i)`, a request line numbered i. With
 * `readAfter`, its stdout is read only once its stderr contains that text.
 */
function runLoggerScript(script: string, opts: { env?: Record<string, string>; readAfter?: string } = {}): Promise<ScriptRun> {
  const logger = path.join(REPO_ROOT, 'dist', 'lib', 'logger.js')
  const prelude = `const { log, logBufferedLine, isoTime, setDebug, flushLogs } = require(${JSON.stringify(logger)})
    const requestLine = (i) => '{"time":"' + isoTime() + '","level":"info","msg":"request","i":' + i + '}\\n'`
  const child = spawn(process.execPath, ['-e', `${prelude}\n${script}`], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  onCleanup(() => child.kill('SIGKILL'))
  return new Promise((resolve) => {
    let stdout = ''
    let stderr = ''
    const read = () => child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    if (!opts.readAfter) read()
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const waiting = opts.readAfter && !stderr.includes(opts.readAfter)
      stderr += chunk
      if (waiting && stderr.includes(opts.readAfter!)) read()
    })
    child.once('close', (code) => resolve({ stdout, stderr, code }))
  })
}

function parseLines(text: string): LogLine[] {
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as LogLine)
}

/** Request lines 0 to n - 1, each exactly once. */
function expectEachRequestOnce(lines: LogLine[], n: number): void {
  const seen = lines.filter((line) => line.msg === 'request').map((line) => Number(line.i)).sort((a, b) => a - b)
  expect(seen).toEqual(Array.from({ length: n }, (_, i) => i))
}

describe('log output', () => {
  it('keeps serving when every write to stdout fails with ENOSPC (stdout is /dev/full)', async () => {
    const backend = await startBackend()
    const devFull = fs.openSync('/dev/full', 'w')
    let proxy: Proxy
    try {
      proxy = await startProxy({ workers: WORKERS, stdout: devFull })
    } finally {
      fs.closeSync(devFull)
    }

    await proxy.deploy([backend.address])
    const bodies = await serveRequests(proxy.port)
    const status = await proxy.cli(['status'])

    expect(bodies).toEqual(Array(REQUESTS).fill(backend.name))
    expect(status.code).toBe(0)
    await expectReportedOncePerProcess(proxy, 'ENOSPC')
    expect(await proxy.stop('SIGTERM')).toBe(0)
  })

  it('keeps serving after the reader of its stdout goes away (EPIPE), and still exits 0', async () => {
    const backend = await startBackend()
    const other = await startBackend()
    const proxy = await startProxy({ workers: WORKERS })
    await proxy.deploy([backend.address])

    proxy.proc.stdout!.destroy()
    const before = await serveRequests(proxy.port)
    // The primary logs a deploy too: its first write after the close fails as well.
    await proxy.deploy([other.address])
    const after = await serveRequests(proxy.port)

    expect(before).toEqual(Array(REQUESTS).fill(backend.name))
    expect(after).toEqual(Array(REQUESTS).fill(other.name))
    await expectReportedOncePerProcess(proxy, 'EPIPE')
    expect(proxy.proc.exitCode).toBeNull()
    expect(() => process.kill(proxy.proc.pid!, 0)).not.toThrow()
    expect((await proxy.status()).workers).toBe(WORKERS)
    expect(await proxy.stop('SIGTERM')).toBe(0)
  })

  it('writes lifecycle events and request lines as JSON objects with time, level, msg and their fields', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], ['--host', 'shape.test'])
    expect((await request(proxy.port, { host: 'shape.test', path: '/shape' })).status).toBe(200)

    const event = await proxy.waitForLog((line) => line.msg === 'deploy finished')
    const access = await proxy.waitForLog((line) => line.msg === 'request' && line.path === '/shape')

    for (const line of [event, access]) {
      expect(isIsoTime(line.time)).toBe(true)
      expect(line.level).toBe('info')
    }
    expect(event).toEqual({ time: event.time, level: 'info', msg: 'deploy finished', service: 'shape.test', durationMs: expect.any(Number) })
    expect(access).toMatchObject({ level: 'info', msg: 'request', service: 'shape.test', target: backend.address, status: 200, host: 'shape.test' })
    expect(proxy.logs.filter((line) => 'raw' in line)).toEqual([])
  })

  it('writes debug lines only once debug is on', async () => {
    const run = await runLoggerScript(`
      log('debug', 'hidden')
      setDebug(true)
      log('debug', 'shown', { n: 1 })
    `)
    const withEnv = await runLoggerScript(`log('debug', 'from the environment')`, { env: { MPROXY_DEBUG: '1' } })

    expect(parseLines(run.stdout)).toEqual([{ time: expect.any(String), level: 'debug', msg: 'shown', n: 1 }])
    expect(parseLines(withEnv.stdout).map((line) => line.msg)).toEqual(['from the environment'])
  })

  it('writes every line still waiting when the process exits at once', async () => {
    const run = await runLoggerScript(`
      for (let i = 0; i < ${EXIT_LINES}; i++) logBufferedLine(requestLine(i))
      log('info', 'stopped')
      process.exit(0)
    `)

    expect(run.code).toBe(0)
    expectEachRequestOnce(parseLines(run.stdout), EXIT_LINES)
    expect(parseLines(run.stdout).filter((line) => line.msg === 'stopped')).toHaveLength(1)
  })

  it('loses and repeats no line when flushLogs runs while a write is in the thread pool', async () => {
    const run = await runLoggerScript(`
      for (let i = 0; i < ${IN_FLIGHT_LINES}; i++) logBufferedLine(requestLine(i))
      flushLogs()
      log('info', 'after')
      setTimeout(() => {}, 100)
    `)

    expect(run).toMatchObject({ code: 0, stderr: '' })
    expectEachRequestOnce(parseLines(run.stdout), IN_FLIGHT_LINES)
    expect(parseLines(run.stdout).at(-1)?.msg).toBe('after')
  })

  it('drops and counts the lines a reader that falls behind cannot take, instead of queueing them all', async () => {
    // Request lines are logged in slices, as requests would, while nothing reads stdout.
    const run = await runLoggerScript(`
      let i = 0
      ;(function slice() {
        for (let k = 0; k < 1000 && i < ${FLOOD_LINES}; k++, i++) {
          logBufferedLine(requestLine(i))
        }
        if (i < ${FLOOD_LINES}) return setImmediate(slice)
        log('info', 'done')
        process.stderr.write('done\\n')
        setTimeout(() => {}, 500)
      })()
    `, { readAfter: 'done' })

    const lines = parseLines(run.stdout)
    const requests = lines.filter((line) => line.msg === 'request').map((line) => Number(line.i))
    const dropped = lines.filter((line) => line.msg === 'log lines dropped')
    expect(run.code).toBe(0)
    expect(lines.some((line) => line.msg === 'done')).toBe(true)
    expect(dropped.length).toBeGreaterThan(0)
    expect(requests.length + dropped.reduce((sum, line) => sum + Number(line.lines), 0)).toBe(FLOOD_LINES)
    expect(requests).toEqual([...requests].sort((a, b) => a - b))
  })
})
