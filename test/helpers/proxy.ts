/** Test helpers: Proxy */
import { ChildProcess, spawn } from 'node:child_process'
import * as readline from 'node:readline'
import type { ListResponse, StatusResponse } from '../../src/control/protocol'
import { BIN, FAST_HEALTH_FLAGS, PROXY_START_TIMEOUT_MS, PROXY_STOP_TIMEOUT_MS, REPO_ROOT, SHORT_TIMEOUT_MS } from './timing'
import { killHard, onCleanup, track } from './cleanup'
import { makeStateDir, waitUntil } from './wait'
import { CliResult, cleanEnv, runCli } from './cli'

export interface LogLine {
  msg?: string
  level?: string
  [key: string]: unknown
}

export interface Proxy {
  port: number
  /** The HTTPS port from the "listening" line; 0 when HTTPS could not listen. */
  httpsPort: number
  stateDir: string
  /** Parsed stdout lines so far (non-JSON lines appear as `{ raw }`). */
  logs: LogLine[]
  /** Everything written to stderr so far. */
  stderr(): string
  proc: ChildProcess
  /** Runs `node bin/run.js <args> --state-dir <dir>`. */
  cli(args: string[], opts?: { timeoutMs?: number }): Promise<CliResult>
  /** `deploy <targets> <fast health flags> <flags>`; throws with the CLI output unless it exits 0. */
  deploy(targets: string[], flags?: string[]): Promise<CliResult>
  /** `list --json`, parsed. */
  list(): Promise<ListResponse>
  /** `status --json`, parsed. */
  status(): Promise<StatusResponse>
  /** Sends `signal` and resolves with the exit code once the process is gone (null if killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>
  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>
  /** Resolves when the process has exited. */
  exited: Promise<number | null>
}

export interface ProxyOptions {
  /** `--workers N`; default 2; `null` leaves the flag out (to test the environment). */
  workers?: number | null
  /** `--http-port N`; default 0; `null` leaves the flag out (to test the environment). */
  httpPort?: number | null
  env?: Record<string, string | undefined>
  args?: string[]
  /** Reuse a state directory (restart tests); a fresh temporary one otherwise. */
  stateDir?: string
  /** Pass no flags at all, only environment variables, as the Docker entrypoint does. */
  envOnly?: boolean
  /** Run under this limit of open files (`ulimit -n`), workers included. Default: the test's own. */
  fileLimit?: number
  /** The `bin/run.js` to start (a copy of the build, say). Default: this repository's. */
  bin?: string
  /**
   * A file descriptor for the proxy's stdout instead of a pipe to this process (e.g. of /dev/full).
   * `logs` then stays empty, and the ports come from `status --json`.
   */
  stdout?: number
}

/**
 * Spawns `node bin/run.js run --state-dir DIR --http-port 0 --workers N --https-port 0` and
 * resolves once it logs `"msg":"listening"` (or, with `stdout`, once `status` answers), with the
 * port it reports.
 */
export async function startProxy(opts: ProxyOptions = {}): Promise<Proxy> {
  const stateDir = opts.stateDir ?? makeStateDir()
  const extra = opts.args ?? []
  const args = [opts.bin ?? BIN, 'run']
  if (opts.envOnly) {
    opts = { ...opts, env: { MPROXY_STATE_DIR: stateDir, HTTP_PORT: '0', HTTPS_PORT: '0', ...opts.env } }
  } else {
    args.push('--state-dir', stateDir)
    if (opts.httpPort !== null) args.push('--http-port', String(opts.httpPort ?? 0))
    if (opts.workers !== null) args.push('--workers', String(opts.workers ?? 2))
    if (!extra.includes('--https-port')) args.push('--https-port', '0')
  }
  args.push(...extra)
  // `exec` keeps the pid: signals reach the proxy itself.
  const [command, commandArgs] = opts.fileLimit === undefined
    ? [process.execPath, args]
    : ['/bin/sh', ['-c', 'ulimit -n "$0" && exec "$@"', String(opts.fileLimit), process.execPath, ...args]]
  const proc = spawn(command, commandArgs, { cwd: REPO_ROOT, env: cleanEnv(opts.env), stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'] })
  track(proc)

  const logs: LogLine[] = []
  const watchers = new Set<(line: LogLine) => void>()
  let stderr = ''
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  if (proc.stdout) readline.createInterface({ input: proc.stdout }).on('line', (text) => {
    let line: LogLine
    try {
      const parsed: unknown = JSON.parse(text)
      line = parsed && typeof parsed === 'object' ? (parsed as LogLine) : { raw: text }
    } catch {
      line = { raw: text }
    }
    logs.push(line)
    for (const watcher of watchers) watcher(line)
  })
  const exited = new Promise<number | null>((resolve) => {
    if (proc.exitCode !== null) resolve(proc.exitCode)
    else proc.once('exit', (code) => resolve(code))
  })

  const waitForLog = (predicate: (line: LogLine) => boolean, timeoutMs = SHORT_TIMEOUT_MS): Promise<LogLine> => {
    const found = logs.find(predicate)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        watchers.delete(watcher)
      }
      const watcher = (line: LogLine): void => {
        if (predicate(line)) {
          done()
          resolve(line)
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a log line; last lines:\n${tail(logs)}\nstderr: ${stderr}`))
      }, timeoutMs)
      watchers.add(watcher)
      void exited.then(() => {
        if (!watchers.has(watcher)) return
        done()
        reject(new Error(`mproxy exited (code ${proc.exitCode}) before the log line; last lines:\n${tail(logs)}\nstderr: ${stderr}`))
      })
    })
  }

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode
    proc.kill(signal)
    const timer = setTimeout(() => killHard(proc), PROXY_STOP_TIMEOUT_MS)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }
  onCleanup(() => stop('SIGTERM'))

  const cli = (cliArgs: string[], cliOpts: { timeoutMs?: number } = {}): Promise<CliResult> =>
    runCli(cliArgs, { stateDir, env: opts.env, timeoutMs: cliOpts.timeoutMs })

  const listening = opts.stdout === undefined
    ? await waitForLog((line) => line.msg === 'listening', PROXY_START_TIMEOUT_MS)
    : await waitUntil(async () => {
      if (proc.exitCode !== null) throw new Error(`mproxy exited (code ${proc.exitCode}); stderr: ${stderr}`)
      const result = await cli(['status', '--json'])
      if (result.code !== 0) return undefined
      const status = JSON.parse(result.stdout) as StatusResponse
      return { http: status.httpPort, https: status.httpsPort } as LogLine
    }, PROXY_START_TIMEOUT_MS, 'mproxy to answer status')
  const port = Number(listening.http)
  if (!Number.isInteger(port) || port <= 0) throw new Error(`"listening" line has no http port: ${JSON.stringify(listening)}`)

  return {
    port,
    httpsPort: Number(listening.https ?? 0),
    stateDir,
    logs,
    stderr: () => stderr,
    proc,
    cli,
    async deploy(targets, flags = []) {
      const result = await cli(['deploy', ...targets, ...FAST_HEALTH_FLAGS, ...flags])
      if (result.code !== 0) throw new Error(`deploy ${targets.join(' ')} failed (${result.code}):\n${result.stdout}\n${result.stderr}`)
      return result
    },
    async list() {
      const result = await cli(['list', '--json'])
      if (result.code !== 0) throw new Error(`list --json failed (${result.code}): ${result.stderr}`)
      return JSON.parse(result.stdout) as ListResponse
    },
    async status() {
      const result = await cli(['status', '--json'])
      if (result.code !== 0) throw new Error(`status --json failed (${result.code}): ${result.stderr}`)
      return JSON.parse(result.stdout) as StatusResponse
    },
    stop,
    waitForLog,
    exited,
  }
}

export function tail(logs: LogLine[], n = 15): string {
  return logs
    .slice(-n)
    .map((line) => JSON.stringify(line))
    .join('\n')
}
