/**
 * Workers that could not accept connections lately (out of file descriptors), as they reported
 * it. `mproxy status` fails while any report is recent.
 */

/** A report keeps `status` failing for this long after it arrived. */
export const ACCEPT_ERROR_WINDOW_MS = 5_000

/** A worker that could not accept connections lately. */
export interface AcceptErrorStatus {
  /** The worker's id, as in the logs. */
  worker: number
  pid: number
  /** `EMFILE (too many open files)`. */
  error: string
  lastSeenMsAgo: number
}

interface Report {
  pid: number
  error: string
  at: number
}

export class AcceptErrors {
  readonly #reports = new Map<number, Report>()

  record(worker: number, pid: number, error: string): void {
    this.#reports.set(worker, { pid, error, at: Date.now() })
  }

  /** Reports younger than the window, newest first; older ones are forgotten. */
  recent(now = Date.now()): AcceptErrorStatus[] {
    const recent: AcceptErrorStatus[] = []
    for (const [worker, report] of this.#reports) {
      const ageMs = now - report.at
      if (ageMs > ACCEPT_ERROR_WINDOW_MS) this.#reports.delete(worker)
      else recent.push({ worker, pid: report.pid, error: report.error, lastSeenMsAgo: ageMs })
    }
    return recent.sort((a, b) => a.lastSeenMsAgo - b.lastSeenMsAgo)
  }
}
