/**
 * Probes one target: `GET <path>` at once, then every interval. Any 2xx within the timeout is
 * healthy. Each result goes to `onResult`, with a short human reason for failures.
 */
import http from 'node:http'
import type { HealthCheckOptions } from '../../options'
import { formatDuration } from '../../lib/duration'
import { splitTarget } from '../../lib/validate'

export interface ProbeResult {
  ok: boolean
  /** `status 200`, `status 503`, `connection refused`, `timed out after 5s`, ... */
  detail: string
  durationMs: number
}

export class HealthCheck {
  readonly #address: string
  readonly #options: HealthCheckOptions
  readonly #onResult: (result: ProbeResult) => void
  #timer: NodeJS.Timeout | undefined
  #request: http.ClientRequest | undefined
  #stopped = true

  constructor(address: string, options: HealthCheckOptions, onResult: (result: ProbeResult) => void) {
    this.#address = address
    this.#options = options
    this.#onResult = onResult
  }

  get running(): boolean {
    return !this.#stopped
  }

  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#probe()
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#request?.destroy()
  }

  // Private

  #probe(): void {
    const startedAt = Date.now()
    const { host: hostname, port } = splitTarget(this.#address)
    let settled = false
    const finish = (ok: boolean, detail: string) => {
      if (settled) return
      settled = true
      this.#request = undefined
      if (this.#stopped) return
      this.#onResult({ ok, detail, durationMs: Date.now() - startedAt })
      if (!this.#stopped) this.#timer = setTimeout(() => this.#probe(), this.#options.intervalMs)
    }
    const request = http.get({
      hostname,
      port,
      path: this.#options.path,
      agent: false,
      headers: { 'user-agent': 'mproxy-health-check', connection: 'close' },
      timeout: this.#options.timeoutMs,
    }, (res) => {
      res.resume()
      const status = res.statusCode ?? 0
      finish(status >= 200 && status < 300, `status ${status}`)
    })
    request.on('timeout', () => {
      finish(false, `timed out after ${formatDuration(this.#options.timeoutMs)}`)
      request.destroy()
    })
    request.on('error', (err: NodeJS.ErrnoException) => finish(false, describeError(err)))
    this.#request = request
  }
}

function describeError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'connection refused'
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'host not found'
    case 'ECONNRESET': return 'connection reset'
    case 'EHOSTUNREACH': case 'ENETUNREACH': return 'host unreachable'
    default: return err.code ?? err.message
  }
}
