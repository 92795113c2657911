/** Test helpers: CLI */
import { execFile } from 'node:child_process'
import { BIN, CLI_TIMEOUT_MS, REPO_ROOT } from './timing'
import { track } from './cleanup'

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  durationMs: number
}

/** Environment without any MPROXY_* / HTTP(S)_PORT leaking in from the developer's shell. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(MPROXY_|HTTPS?_PORT$|METRICS_PORT$)/.test(key)) env[key] = value
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
