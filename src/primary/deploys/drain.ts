/**
 * Waits until the workers report nothing in flight on the given targets, or the timeout
 * passes; then what remains is cut. Progress goes to the deploy's caller.
 */
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'

export interface InflightSource {
  inflight(address: string): number
  onCounts(listener: () => void): () => void
  /** Cuts what is in flight on these retired targets; with `service`, that service's requests on them, routed or not. */
  cut(addresses: string[], service?: string): void
}

/** Progress lines are at most this frequent while counts change. */
const PROGRESS_INTERVAL_MS = 1_000
/** An unchanged count is repeated this often, so a long drain does not look stuck. */
const PROGRESS_REPEAT_MS = 5_000
/** After a cut, how long the workers get to report that the cut requests are gone. */
const CUT_SETTLE_MS = 2_000

export interface DrainResult {
  durationMs: number
  /** Requests still in flight when the timeout passed. */
  cut: number
}

/**
 * Waits for the requests on `addresses` to finish. Targets still routed to (a pause or stop)
 * are drained for one `service`: at the timeout only its requests are cut.
 */
export async function drainTargets(
  workers: InflightSource,
  addresses: string[],
  timeoutMs: number,
  progress: (message: string) => void,
  service?: string,
): Promise<DrainResult> {
  const label = addresses.join(', ')
  const total = () => addresses.reduce((sum, address) => sum + workers.inflight(address), 0)
  const startedAt = Date.now()
  if (total() === 0) return { durationMs: 0, cut: 0 }

  let lastReported = -1
  let lastReportAt = 0
  const report = (force = false) => {
    const count = total()
    const now = Date.now()
    const unchanged = count === lastReported && now - lastReportAt < PROGRESS_REPEAT_MS
    if (unchanged || (!force && now - lastReportAt < PROGRESS_INTERVAL_MS)) return
    lastReported = count
    lastReportAt = now
    progress(`draining ${label}: ${count} ${count === 1 ? 'request' : 'requests'} in flight`)
  }
  report(true)

  const drained = await waitForZero(workers, total, timeoutMs, report)
  if (drained) return { durationMs: Date.now() - startedAt, cut: 0 }

  const remaining = total()
  log('warn', 'drain timeout passed, cutting requests', { targets: addresses, inflight: remaining, timeoutMs })
  progress(`drain timeout (${formatDuration(timeoutMs)}) passed: cutting ${remaining} in flight on ${label}`)
  workers.cut(addresses, service)
  await waitForZero(workers, total, CUT_SETTLE_MS, () => {})
  return { durationMs: Date.now() - startedAt, cut: remaining }
}

function waitForZero(workers: InflightSource, total: () => number, timeoutMs: number, onChange: () => void): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (drained: boolean) => {
      unsubscribe()
      clearTimeout(timer)
      clearInterval(ticker)
      resolve(drained)
    }
    const unsubscribe = workers.onCounts(() => {
      if (total() === 0) done(true)
      else onChange()
    })
    const timer = setTimeout(() => done(total() === 0), timeoutMs)
    // Counts may stay put for a long time (one slow request): keep the progress line alive.
    const ticker = setInterval(onChange, PROGRESS_INTERVAL_MS)
    if (total() === 0) done(true)
  })
}
