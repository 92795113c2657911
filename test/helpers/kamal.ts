/** `bin/kamal-proxy.js` as Kamal drives it: HOME and KAMAL_PROXY_SOCKET in a temporary directory. */
import { execFile } from 'node:child_process'
import * as path from 'node:path'
import type { ListResponse } from '../../src/control/protocol'
import { track } from './cleanup'
import { cleanEnv, runCli, type CliResult } from './cli'
import { startProxy, type Proxy } from './proxy'
import { CLI_TIMEOUT_MS, REPO_ROOT } from './timing'
import { makeStateDir } from './wait'

export const KAMAL_BIN = path.join(REPO_ROOT, 'bin', 'kamal-proxy.js')

export interface KamalHost {
  home: string
  socket: string
  dataDir: string
  /** `node bin/kamal-proxy.js <args>` with this HOME and socket. */
  kamal(args: string[]): Promise<CliResult>
  /** `kamal-proxy run` (two workers unless `MPROXY_WORKERS` says otherwise), waiting for it to listen. */
  run(env?: Record<string, string>): Promise<Proxy>
}

export function kamalHost(): KamalHost {
  const home = makeStateDir()
  const socket = path.join(home, 'kamal-proxy.sock')
  const env = { HOME: home, KAMAL_PROXY_SOCKET: socket }
  return {
    home,
    socket,
    dataDir: path.join(home, '.config', 'kamal-proxy'),
    kamal: (args) => new Promise((resolve) => {
      const started = Date.now()
      const child = execFile(process.execPath, [KAMAL_BIN, ...args], { cwd: REPO_ROOT, env: cleanEnv(env), timeout: CLI_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout: String(stdout), stderr: String(stderr), durationMs: Date.now() - started })
      })
      track(child)
    }),
    // HTTP_PORT and HTTPS_PORT are kamal-proxy's variables too; workers come from MPROXY_WORKERS.
    run: (extra = {}) => startProxy({ bin: KAMAL_BIN, envOnly: true, env: { ...env, MPROXY_WORKERS: '2', ...extra } }),
  }
}

/** `mproxy list --json` on the data dir: the other dialect, through the socket link. */
export async function mproxyList(dataDir: string): Promise<ListResponse> {
  const result = await runCli(['list', '--json'], { stateDir: dataDir })
  if (result.code !== 0) throw new Error(`mproxy list failed: ${result.stderr}`)
  return JSON.parse(result.stdout) as ListResponse
}

/** The dialect's success: exit 0 and nothing printed, as kamal-proxy. */
export const succeeded = (result: CliResult) => expect({ code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({ code: 0, stdout: '', stderr: '' })
