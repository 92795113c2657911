/**
 * Test helpers shared by every integration test: real upstream servers, real `mproxy run`
 * processes, a raw HTTP client, a keep-alive load generator and `waitUntil`.
 *
 * Everything a helper starts is registered for cleanup the moment it exists: resources created
 * inside a test are released after that test, resources created in `beforeAll` after the file.
 * Leftover child processes are SIGKILLed when the jest worker exits.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import * as readline from 'node:readline'
import forge from 'node-forge'
import type { ListResponse, StatusResponse } from '../src/control/protocol'

// ---------------------------------------------------------------------------------------------
// Timing constants (all in ms). Tests wait for conditions; these only bound the waits.

/** Default bound for `waitUntil` and `waitForLog`. */
export const SHORT_TIMEOUT_MS = 5_000
/** How long `mproxy run` may take to log "listening" (oclif start-up + forking workers). */
export const PROXY_START_TIMEOUT_MS = 20_000
/** How long a proxy may take to exit after a signal before the helper SIGKILLs it. */
export const PROXY_STOP_TIMEOUT_MS = 15_000
/** How long one CLI command may run before the helper kills it. */
export const CLI_TIMEOUT_MS = 30_000
/** Health checks fast enough that a deploy of a healthy target takes ~100 ms. */
export const FAST_HEALTH_FLAGS = ['--health-check-interval', '100ms', '--health-check-timeout', '1s']

export const REPO_ROOT = path.resolve(__dirname, '..')
const BIN = path.join(REPO_ROOT, 'bin', 'run.js')

// ---------------------------------------------------------------------------------------------
// Cleanup registry

type Closer = () => Promise<unknown> | unknown

const testScoped: Closer[] = []
const fileScoped: Closer[] = []
const children = new Set<ChildProcess>()

/**
 * True from the root beforeEach to the root afterEach of a test, false in beforeAll/afterAll.
 * (jest's `expect.getState().currentTestName` is not reset between tests, so it cannot tell.)
 */
let inTest = false

function insideTest(): boolean {
  return inTest
}

/** Registers `closer` to run after the current test (or after the file, from `beforeAll`). */
export function onCleanup(closer: Closer): void {
  ;(insideTest() ? testScoped : fileScoped).push(closer)
}

async function runClosers(list: Closer[]): Promise<void> {
  const errors: unknown[] = []
  // Last created, first closed: a proxy goes before the backends it points at.
  for (const closer of list.splice(0).reverse()) {
    try {
      await closer()
    } catch (err) {
      errors.push(err)
    }
  }
  if (errors.length) throw errors[0]
}

beforeEach(() => {
  inTest = true
})
afterEach(async () => {
  try {
    await runClosers(testScoped)
  } finally {
    inTest = false
  }
})
afterAll(async () => {
  await runClosers(fileScoped)
  for (const child of children) killHard(child)
})
process.on('exit', () => {
  for (const child of children) killHard(child)
})

function killHard(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) {
    try {
      child.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
}

function track(child: ChildProcess): void {
  children.add(child)
  child.once('exit', () => children.delete(child))
}

// ---------------------------------------------------------------------------------------------
// Waiting

/**
 * Calls `fn` until it returns a truthy value (or resolves to one) and returns that value.
 * Thrown errors count as "not yet". Polls with backoff from 10 ms up to 200 ms.
 */
export async function waitUntil<T>(
  fn: () => T | Promise<T>,
  timeoutMs = SHORT_TIMEOUT_MS,
  description = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let delay = 10
  let lastError: unknown
  for (;;) {
    try {
      const value = await fn()
      if (value) return value as NonNullable<T>
    } catch (err) {
      lastError = err
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${reason}`)
    }
    await delayMs(Math.min(delay, Math.max(0, deadline - Date.now())))
    delay = Math.min(delay * 2, 200)
  }
}

export interface Timed<T> {
  value?: T
  error?: Error
  at: number
}

/** Runs `promise` and records when it settled, without letting a rejection escape. */
export function timed<T>(promise: Promise<T>): Promise<Timed<T>> {
  return promise.then(
    (value) => ({ value, at: Date.now() }),
    (error: Error) => ({ error, at: Date.now() }),
  )
}

export function delayMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export function makeStateDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mproxy-test-'))
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

// ---------------------------------------------------------------------------------------------
// Backends

export type BackendHandler = (req: http.IncomingMessage, res: http.ServerResponse, backend: Backend) => void

export interface Backend {
  /** `backend-<port>` unless a name was given; the default handler answers `/` with it. */
  name: string
  port: number
  /** `127.0.0.1:PORT`, ready to pass to `mproxy deploy`. */
  address: string
  /** Requests received so far (health checks included). */
  readonly requests: number
  /** Requests received so far, excluding the health-check path `/up`. */
  readonly appRequests: number
  server: http.Server
  close(): Promise<void>
}

/**
 * The default upstream: `/up` 200, `/slow?ms=N` answers its name after N ms, `/headers` echoes
 * the request headers as JSON, anything else answers its name. Upgrades get a raw 101 and an
 * echo of every byte.
 */
export function defaultHandler(req: http.IncomingMessage, res: http.ServerResponse, backend: Backend): void {
  const url = new URL(req.url ?? '/', 'http://backend')
  if (url.pathname === '/up') {
    res.end('ok')
  } else if (url.pathname === '/slow') {
    const timer = setTimeout(() => res.end(backend.name), Number(url.searchParams.get('ms') ?? 1000))
    res.once('close', () => clearTimeout(timer))
  } else if (url.pathname === '/headers') {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(req.headers))
  } else {
    res.end(backend.name)
  }
}

export async function startBackend(handler: BackendHandler = defaultHandler, opts: { name?: string } = {}): Promise<Backend> {
  let requests = 0
  let appRequests = 0
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    requests++
    if (!req.url?.startsWith('/up')) appRequests++
    handler(req, res, backend)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    requests++
    appRequests++
    sockets.add(socket)
    socket.on('error', () => socket.destroy())
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    if (head.length) socket.write(head)
    socket.on('data', (chunk) => socket.write(chunk))
    socket.on('end', () => socket.end())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  let closed: Promise<void> | undefined
  const backend: Backend = {
    name: opts.name ?? `backend-${port}`,
    port,
    address: `127.0.0.1:${port}`,
    get requests() {
      return requests
    },
    get appRequests() {
      return appRequests
    },
    server,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
        server.closeAllConnections()
      })
      return closed
    },
  }
  onCleanup(() => backend.close())
  return backend
}

// ---------------------------------------------------------------------------------------------
// CLI

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  durationMs: number
}

/** Environment without any MPROXY_* / HTTP(S)_PORT leaking in from the developer's shell. */
function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(MPROXY_|HTTPS?_PORT$)/.test(key)) env[key] = value
  }
  env.OCLIF_SKIP_NEW_VERSION_CHECK = 'true'
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key]
    else env[key] = value
  }
  return env
}

/**
 * Runs `node bin/run.js <args>` (plus `--state-dir DIR` when given) and resolves with its exit
 * code and output; never rejects on a non-zero exit.
 */
export function runCli(
  args: string[],
  opts: { stateDir?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<CliResult> {
  const fullArgs = [BIN, ...args, ...(opts.stateDir ? ['--state-dir', opts.stateDir] : [])]
  const started = Date.now()
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      fullArgs,
      { cwd: REPO_ROOT, env: cleanEnv(opts.env), timeout: opts.timeoutMs ?? CLI_TIMEOUT_MS, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout: String(stdout), stderr: String(stderr), durationMs: Date.now() - started })
      },
    )
    track(child)
  })
}

/** Lines of `text` that start with `Error:`. */
export function errorLines(text: string): string[] {
  return text.split('\n').filter((line) => line.startsWith('Error:'))
}

// ---------------------------------------------------------------------------------------------
// Proxy

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

function tail(logs: LogLine[], n = 15): string {
  return logs
    .slice(-n)
    .map((line) => JSON.stringify(line))
    .join('\n')
}

// ---------------------------------------------------------------------------------------------
// Client

export interface Response {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

export interface RequestOptions {
  host?: string
  path?: string
  method?: string
  headers?: http.OutgoingHttpHeaders
  /** Defaults to `false`: a fresh connection per request. */
  agent?: http.Agent | false
  body?: string
  /** Abort with an error after this long. Default CLI_TIMEOUT_MS. */
  timeoutMs?: number
  /** Aborting destroys the connection, as a browser does when the user navigates away. */
  signal?: AbortSignal
  /** Speak HTTPS, trusting `ca` and sending `servername` as SNI. */
  tls?: { ca: string; servername: string }
}

/** One HTTP request to 127.0.0.1:`port`; rejects on socket errors only. */
export function request(port: number, opts: RequestOptions = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { ...opts.headers }
    if (opts.host) headers.host = opts.host
    const req = (opts.tls ? https : http).request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers,
        agent: opts.agent ?? false,
        signal: opts.signal,
        ...(opts.tls && { ca: opts.tls.ca, servername: opts.tls.servername }),
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
        res.on('aborted', () => reject(new Error('response aborted')))
      },
    )
    req.setTimeout(opts.timeoutMs ?? CLI_TIMEOUT_MS, () => req.destroy(new Error('client timeout')))
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** The body of a successful GET, or throws. Handy inside `waitUntil`. */
export async function getBody(port: number, opts: RequestOptions = {}): Promise<string> {
  const res = await request(port, opts)
  if (res.status !== 200) throw new Error(`GET ${opts.path ?? '/'} answered ${res.status}: ${res.body.slice(0, 200)}`)
  return res.body
}

export interface UpgradedSocket {
  socket: net.Socket
  response: http.IncomingMessage
  /** Writes `text` and resolves with the next `text.length` bytes received. */
  echo(text: string, timeoutMs?: number): Promise<string>
  /** Resolves once the socket is closed (by either side). */
  closed: Promise<void>
}

/** Performs a WebSocket-style upgrade by hand through the proxy and returns the raw socket. */
export function openUpgrade(port: number, opts: { host?: string; path?: string } = {}): Promise<UpgradedSocket> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { connection: 'Upgrade', upgrade: 'websocket' }
    if (opts.host) headers.host = opts.host
    const req = http.request({ host: '127.0.0.1', port, path: opts.path ?? '/ws', headers, agent: false })
    req.on('upgrade', (response: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      let buffer = head.toString('utf8')
      const waiters: Array<() => void> = []
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8')
        for (const waiter of waiters.splice(0)) waiter()
      })
      socket.on('error', () => socket.destroy())
      const closed = new Promise<void>((done) => socket.once('close', () => done()))
      onCleanup(() => socket.destroy())
      resolve({
        socket,
        response,
        closed,
        echo(text, timeoutMs = SHORT_TIMEOUT_MS) {
          socket.write(text)
          return waitUntil(
            () => {
              if (buffer.length < text.length) return undefined
              const out = buffer.slice(0, text.length)
              buffer = buffer.slice(text.length)
              return out
            },
            timeoutMs,
            `echo of ${JSON.stringify(text)}`,
          )
        },
      })
    })
    req.on('response', (res) => reject(new Error(`upgrade refused with ${res.statusCode}`)))
    req.on('error', reject)
    req.end()
  })
}

// ---------------------------------------------------------------------------------------------
// Load

export interface LoadResult {
  /** Responses with status 200. */
  ok: number
  /** Responses with another status, plus socket errors. */
  failed: number
  /** Body → count, for 200 responses. */
  bodies: Map<string, number>
  /** Status → count, for every response. */
  statuses: Map<number, number>
  /** The first few failures, described. */
  errors: string[]
  /** Socket error code (ECONNRESET, ECONNREFUSED ...) → count. */
  errorCodes: Map<string, number>
}

/** Every request of the run got a 200, and every one of `backends` answered some of them. */
export function expectAllServedBy(result: LoadResult, backends: { name: string }[]): void {
  expect(result.errors).toEqual([])
  expect(result.failed).toBe(0)
  expect([...result.statuses.keys()]).toEqual([200])
  for (const backend of backends) expect(result.bodies.get(backend.name)).toBeGreaterThan(0)
}

export interface Load {
  /** Counts so far, while the load keeps running. */
  snapshot(): LoadResult
  /** Stops issuing requests, waits for those in flight, and returns the totals. */
  stop(): Promise<LoadResult>
}

/**
 * Keeps `concurrency` clients busy, each on its own keep-alive connection (or, with
 * `newConnections`, a new connection per request, sent with `Connection: close`), sending GETs
 * back-to-back until stopped, and records every outcome.
 */
export function runLoad(port: number, opts: { concurrency: number; host?: string; path?: string; newConnections?: boolean }): Load {
  const result: LoadResult = { ok: 0, failed: 0, bodies: new Map(), statuses: new Map(), errors: [], errorCodes: new Map() }
  let running = true
  const agents: http.Agent[] = []
  const fail = (what: string): void => {
    result.failed++
    if (result.errors.length < 20) result.errors.push(what)
  }
  const client = async (): Promise<void> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(agent)
    while (running) {
      try {
        const res = await request(port, {
          host: opts.host,
          path: opts.path ?? '/',
          timeoutMs: SHORT_TIMEOUT_MS * 2,
          ...(opts.newConnections ? { agent: false, headers: { connection: 'close' } } : { agent }),
        })
        result.statuses.set(res.status, (result.statuses.get(res.status) ?? 0) + 1)
        if (res.status === 200) {
          result.ok++
          result.bodies.set(res.body, (result.bodies.get(res.body) ?? 0) + 1)
        } else {
          fail(`status ${res.status}: ${res.body.slice(0, 100)}`)
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
        result.errorCodes.set(code, (result.errorCodes.get(code) ?? 0) + 1)
        fail(`error: ${(err as Error).message}`)
      }
    }
  }
  const clients = Array.from({ length: opts.concurrency }, () => client())
  let stopped: Promise<LoadResult> | undefined
  const stop = (): Promise<LoadResult> => {
    running = false
    stopped ??= Promise.all(clients).then(() => {
      for (const agent of agents) agent.destroy()
      return result
    })
    return stopped
  }
  onCleanup(() => stop())
  return {
    snapshot: () => ({
      ...result, bodies: new Map(result.bodies), statuses: new Map(result.statuses), errors: [...result.errors], errorCodes: new Map(result.errorCodes),
    }),
    stop,
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers for assertions

/** Which backend answered, for each of `n` fresh-connection GETs. */
export async function collectBodies(port: number, n: number, opts: RequestOptions = {}): Promise<Map<string, number>> {
  const bodies = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const body = await getBody(port, opts)
    bodies.set(body, (bodies.get(body) ?? 0) + 1)
  }
  return bodies
}

/** A target address on loopback where nothing listens (port 1 is never used by tests). */
export const REFUSED_TARGET = '127.0.0.1:1'

// ---------------------------------------------------------------------------------------------
// Certificates

export interface TestCertificate {
  /** PEM of the test CA that signed the certificate: what clients must trust. */
  ca: string
  certFile: string
  keyFile: string
}

/** A CA and a certificate for `hosts` signed by it, made with node-forge, as files in a temp dir. */
export function makeTestCertificate(hosts: string[], opts: { days?: number } = {}): TestCertificate {
  const pki = forge.pki
  const caKeys = pki.rsa.generateKeyPair(2048)
  const ca = pki.createCertificate()
  ca.publicKey = caKeys.publicKey
  ca.serialNumber = '01'
  ca.validity.notBefore = new Date(Date.now() - 60_000)
  ca.validity.notAfter = new Date(Date.now() + 365 * 86_400_000)
  const caName = [{ name: 'commonName', value: 'mproxy test CA' }]
  ca.setSubject(caName)
  ca.setIssuer(caName)
  ca.setExtensions([{ name: 'basicConstraints', cA: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true }])
  ca.sign(caKeys.privateKey, forge.md.sha256.create())

  const keys = pki.rsa.generateKeyPair(2048)
  const cert = pki.createCertificate()
  cert.publicKey = keys.publicKey
  cert.serialNumber = '02'
  cert.validity.notBefore = new Date(Date.now() - 60_000)
  cert.validity.notAfter = new Date(Date.now() + (opts.days ?? 30) * 86_400_000)
  cert.setSubject([{ name: 'commonName', value: hosts[0] }])
  cert.setIssuer(caName)
  const altNames = hosts.map((host) => (net.isIP(host) ? { type: 7, ip: host } : { type: 2, value: host }))
  cert.setExtensions([{ name: 'subjectAltName', altNames }])
  cert.sign(caKeys.privateKey, forge.md.sha256.create())

  const dir = makeStateDir()
  const certFile = path.join(dir, 'cert.pem')
  const keyFile = path.join(dir, 'key.pem')
  fs.writeFileSync(certFile, pki.certificateToPem(cert))
  fs.writeFileSync(keyFile, pki.privateKeyToPem(keys.privateKey))
  return { ca: pki.certificateToPem(ca), certFile, keyFile }
}

// ---------------------------------------------------------------------------------------------
// ACME test CA (Pebble, Debian package)

export interface Pebble {
  directoryUrl: string
  /** File with the CA of Pebble's own HTTPS listener, for NODE_EXTRA_CA_CERTS. */
  listenerCaFile: string
  /** PEM of the root Pebble issues certificates under (new at every start). */
  root(): Promise<string>
  /** Where Pebble's validator connects for HTTP-01; point it at the proxy with `forwardTo`. */
  forwardTo(port: number): void
  /** The same for TLS-ALPN-01 (the proxy's HTTPS port). */
  forwardTlsTo(port: number): void
  stop(): Promise<void>
}

/** The TCP ports a process listens on (UDP with `udp`), read back from the kernel. */
async function listeningPorts(pid: number, udp = false): Promise<number[]> {
  const { stdout } = await execFileText('ss', [udp ? '-Hlnup' : '-Hlntp'])
  return stdout.split('\n')
    .filter((line) => line.includes(`pid=${pid},`))
    .map((line) => Number(/:(\d+)\s/.exec(line)?.[1]))
    .filter((port) => port > 0)
}

function execFileText(file: string, args: string[]): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, (err, stdout) => (err ? reject(err) : resolve({ stdout })))
  })
}

function startLoggedProcess(command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; ready: RegExp }): Promise<ChildProcess> {
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] })
  track(child)
  onCleanup(() => stopChild(child))
  return new Promise((resolve, reject) => {
    let output = ''
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (opts.ready.test(output)) resolve(child)
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('exit', (code) => reject(new Error(`${command} exited (${code}) before it was ready:\n${output}`)))
    setTimeout(() => reject(new Error(`${command} not ready in time:\n${output}`)), PROXY_START_TIMEOUT_MS).unref()
  })
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => killHard(child), PROXY_STOP_TIMEOUT_MS)
  await exited
  clearTimeout(timer)
}

/** A TCP forwarder on a kernel-picked port whose destination port can be set later. */
async function startForwarder(): Promise<{ port: number; target: number }> {
  const forwarder = { port: 0, target: 0 }
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    const upstream = net.connect(forwarder.target, '127.0.0.1')
    for (const end of [socket, upstream]) {
      sockets.add(end)
      end.once('close', () => sockets.delete(end))
    }
    socket.on('error', () => upstream.destroy())
    upstream.on('error', () => socket.destroy())
    socket.pipe(upstream).pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onCleanup(() => new Promise<void>((resolve) => {
    // close() waits for every connection: one the validator left half-open would hang the test.
    server.close(() => resolve())
    for (const socket of sockets) socket.destroy()
  }))
  forwarder.port = (server.address() as net.AddressInfo).port
  return forwarder
}

/**
 * Starts pebble-challtestsrv (DNS: every name is 127.0.0.1) and Pebble on loopback ports picked
 * by the kernel. Pebble's HTTP-01 validator dials a forwarder of this process, which the test
 * points at the proxy once that has a port.
 */
export async function startPebble(opts: { validitySeconds?: number } = {}): Promise<Pebble> {
  const dir = makeStateDir()
  const http01 = await startForwarder()
  const tlsAlpn01 = await startForwarder()

  const dns = await startLoggedProcess('pebble-challtestsrv', [
    '-dns01', '127.0.0.1:0', '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', '127.0.0.1:0',
    '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
  ], { ready: /Starting management server/ })
  const [dnsPort] = await waitUntil(async () => {
    const ports = await listeningPorts(dns.pid!, true)
    return ports.length > 0 ? ports : undefined
  }, SHORT_TIMEOUT_MS, 'the DNS port of pebble-challtestsrv')

  const listener = makeTestCertificate(['localhost', '127.0.0.1'])
  const listenerCaFile = path.join(dir, 'listener-ca.pem')
  fs.writeFileSync(listenerCaFile, listener.ca)
  fs.writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify({
    pebble: {
      listenAddress: '127.0.0.1:0', managementListenAddress: '127.0.0.1:0',
      certificate: listener.certFile, privateKey: listener.keyFile,
      httpPort: http01.port, tlsPort: tlsAlpn01.port,
      ...(opts.validitySeconds && { certificateValidityPeriod: opts.validitySeconds }),
    },
  }))
  const pebble = await startLoggedProcess('pebble', ['-config', 'pebble.json', '-dnsserver', `127.0.0.1:${dnsPort}`], {
    cwd: dir,
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
    ready: /ACME directory available/,
  })
  // Two listeners: the ACME API answers /dir, the management API /roots/0.
  const ports = await waitUntil(async () => {
    const found = await listeningPorts(pebble.pid!)
    return found.length >= 2 ? found : undefined
  }, SHORT_TIMEOUT_MS, 'the ports of pebble')
  const tlsGet = (port: number, urlPath: string) => request(port, { path: urlPath, tls: { ca: listener.ca, servername: 'localhost' } })
  const statuses = await Promise.all(ports.map((port) => tlsGet(port, '/dir').then((res) => res.status)))
  const acmePort = ports[statuses.indexOf(200)]
  const managementPort = ports.find((port) => port !== acmePort)!

  return {
    directoryUrl: `https://127.0.0.1:${acmePort}/dir`,
    listenerCaFile,
    root: async () => (await tlsGet(managementPort, '/roots/0')).body,
    forwardTo: (port) => { http01.target = port },
    forwardTlsTo: (port) => { tlsAlpn01.target = port },
    stop: () => stopChild(pebble),
  }
}

// ---------------------------------------------------------------------------------------------
// Redis (Debian package)

export interface RedisServer {
  /** `unix:///…/redis.sock`: a socket in a temp dir needs no port at all. */
  url: string
  stop(): Promise<void>
  /**
   * Starts it again on the same socket. Its data is gone (it keeps nothing on disk) unless it
   * was started with `persist: true`.
   */
  restart(): Promise<void>
}

export interface RedisOptions {
  /** `--appendonly yes`: every write goes to an append-only file in its temp dir, so the data survives `restart()`. Default false. */
  persist?: boolean
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const dir = makeStateDir()
  const socket = path.join(dir, 'redis.sock')
  const start = () => startLoggedProcess('redis-server', [
    '--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', opts.persist ? 'yes' : 'no', '--dir', dir,
  ], { ready: /ready to accept connections/i })
  let child = await start()
  return {
    url: `unix://${socket}`,
    stop: () => stopChild(child),
    restart: async () => {
      await stopChild(child)
      child = await start()
    },
  }
}
