/**
 * The wait, after a change made through this node, for every other live node to report that it
 * applied the change and drained. A node that stops heartbeating, or that started with the change
 * already, is not waited for; a node that does not report in time is named, and the wait ends.
 */
import { oneLine } from '../../errors'
import { formatDuration } from '../../lib/duration'
import { log } from '../../lib/logger'
import type { FleetNodes } from './fleet-nodes'
import { SHARED_HEALTH_WAIT_MS, type Progress } from './peers'

/** How often the wait reads the reports; liveness is checked every 10th time. */
const REPORT_POLL_MS = 100
/** Beyond the health check and the drain, how long a node may take to report. */
const REPORT_GRACE_MS = 5_000

/** Resolves once every other live node has reported `revision` of the service, or the time is up. */
export async function awaitReports(nodes: FleetNodes, service: string, revision: number, drainTimeoutMs: number, progress: Progress): Promise<void> {
  const pending = new Set([...(await nodes.live()).keys()].filter((node) => node !== nodes.self))
  if (pending.size === 0) return
  progress(`waiting for ${pending.size} other ${pending.size === 1 ? 'node' : 'nodes'} to switch and drain: ${[...pending].join(', ')}`)
  const timeoutMs = SHARED_HEALTH_WAIT_MS + drainTimeoutMs + REPORT_GRACE_MS
  const deadline = Date.now() + timeoutMs
  for (let poll = 1; pending.size > 0 && Date.now() < deadline; poll++) {
    await new Promise((resolve) => setTimeout(resolve, REPORT_POLL_MS))
    try {
      const reports = await nodes.appliedReports(service)
      for (const node of pending) {
        const report = reports.get(node)
        if (!report || report.revision < revision) continue
        pending.delete(node)
        progress(`${report.warning ? 'warning: ' : ''}node ${node}: ${report.summary}`)
      }
      if (poll % 10 === 0) await dropUnwaited(nodes, pending, revision, progress)
    } catch (err) {
      // The change is saved; only the view of the other nodes is lost while Redis is away.
      log('warn', 'cannot read fleet reports', { service, error: oneLine(err) })
    }
  }
  for (const node of pending) progress(`warning: node ${node} did not report within ${formatDuration(timeoutMs)}; it may still be switching or draining`)
}

/** Stops waiting for the pending nodes that are gone, or that started with the change. */
async function dropUnwaited(nodes: FleetNodes, pending: Set<string>, revision: number, progress: Progress): Promise<void> {
  const live = await nodes.live()
  for (const node of pending) {
    const startedWith = live.get(node)
    if (startedWith === undefined) {
      pending.delete(node)
      progress(`node ${node}: stopped heartbeating, not waiting for it`)
    } else if (startedWith >= revision) {
      pending.delete(node)
      progress(`node ${node}: started with the change`)
    }
  }
}
