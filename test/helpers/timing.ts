/** Test helpers: Timing constants (all in ms). Tests wait for conditions; these only bound the waits. */
import * as path from 'node:path'

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

export const REPO_ROOT = path.resolve(__dirname, '..', '..')
export const BIN = path.join(REPO_ROOT, 'bin', 'run.js')
