/**
 * Notices that the worker cannot accept connections for lack of file descriptors, logs it and
 * tells the primary, at most once a second.
 *
 * libuv hides most of it: when accept() fails with EMFILE, it frees a descriptor it keeps in
 * reserve, accepts and closes the waiting connections, and reports nothing; a server emits
 * 'error' only once that reserve is gone too. So besides those errors, the worker checks twice
 * a second that it could open one more descriptor. The listener itself survives: once
 * descriptors are free again, accepting simply works again.
 */
import fs from 'node:fs'
import util from 'node:util'
import { log } from '../lib/logger'

const PROBE_INTERVAL_MS = 500
const REPORT_INTERVAL_MS = 1_000
const OUT_OF_DESCRIPTORS = new Set(['EMFILE', 'ENFILE'])

export class AcceptErrorReporter {
  #lastReportAt = -Infinity
  readonly #report: (code: string, error: string) => void

  /** `report` tells the primary: `error` reads `EMFILE (too many open files)`. */
  constructor(report: (code: string, error: string) => void) {
    this.#report = report
  }

  /** Takes a listening server's 'error'; false when it is not about descriptors (the caller logs it). */
  serverError(err: NodeJS.ErrnoException): boolean {
    if (!isOutOfDescriptors(err)) return false
    this.#failed(err)
    return true
  }

  /** Starts checking for a free descriptor. */
  watch(): void {
    setInterval(() => {
      try {
        fs.closeSync(fs.openSync('/dev/null', 'r'))
      } catch (err) {
        // Anything else (no /dev/null?) says nothing about accepting.
        if (isOutOfDescriptors(err as NodeJS.ErrnoException)) this.#failed(err as NodeJS.ErrnoException)
      }
    }, PROBE_INTERVAL_MS).unref()
  }

  // Private

  #failed(err: NodeJS.ErrnoException): void {
    const now = performance.now()
    if (now - this.#lastReportAt < REPORT_INTERVAL_MS) return
    this.#lastReportAt = now
    const code = err.code ?? 'EMFILE'
    const error = `${code} (${typeof err.errno === 'number' ? util.getSystemErrorMessage(err.errno) : err.message})`
    log('error', 'cannot accept connections', { error })
    this.#report(code, error)
  }
}

function isOutOfDescriptors(err: NodeJS.ErrnoException): boolean {
  return OUT_OF_DESCRIPTORS.has(err.code ?? '')
}
