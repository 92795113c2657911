/**
 * Waits for new targets to pass their health checks before they get traffic, telling the
 * deploy's caller what each probe found.
 */
import { TargetUnhealthyError } from '../../errors'
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'
import type { ServiceSpec } from '../../options'
import type { Progress } from '../fleet/peers'
import type { Target } from './target'

/**
 * Resolves when every target is healthy. After `timeoutMs` their checks stop and it rejects
 * with the last probe result of each unhealthy target.
 */
export async function waitHealthy(targets: Target[], spec: ServiceSpec, timeoutMs: number, progress: Progress, hasPrevious: boolean): Promise<void> {
  if (targets.length === 0) return
  const { path, intervalMs } = spec.healthCheck
  progress(`waiting for ${targets.map((t) => t.address).join(', ')} to become healthy (GET ${path} every ${formatDuration(intervalMs)}, up to ${formatDuration(timeoutMs)})`)
  const startedAt = Date.now()
  const lastDetail = new Map<string, string>()
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (targets.every((target) => target.state === 'healthy')) finish()
    }
    const finish = (err?: Error) => {
      clearTimeout(timer)
      if (err) reject(err)
      else resolve()
    }
    const timer = setTimeout(() => {
      targets.forEach((target) => target.stop())
      const reasons = targets
        .filter((target) => target.state !== 'healthy')
        .map((target) => `${target.address}: ${target.lastResult?.detail ?? 'no answer yet'}`)
      log('warn', 'target not healthy in time', { service: spec.name, timeoutMs, reasons })
      finish(new TargetUnhealthyError(
        `target failed to become healthy within ${formatDuration(timeoutMs)} (GET ${path}): ${reasons.join('; ')}; ${hasPrevious ? 'the previous targets keep serving' : 'nothing was changed'}`))
    }, timeoutMs)
    for (const target of targets) {
      target.setEvents({
        onStateChange: check,
        // Each line once: a target stays healthy while another is still waited for, and a
        // failure is reported again only when its reason changes.
        onProbe: (probed, result) => {
          const detail = result.ok ? 'healthy' : result.detail
          if (lastDetail.get(probed.address) !== detail) {
            progress(result.ok
              ? `${probed.address} healthy after ${formatDuration(Date.now() - startedAt)}`
              : `${probed.address} not healthy yet: ${result.detail}`)
          }
          lastDetail.set(probed.address, detail)
        },
      })
      target.beginHealthChecks()
    }
  })
}
