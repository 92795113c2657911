import { Flags } from '@oclif/core'
import { NotAcceptingError } from '../errors'
import { formatDuration } from '../lib/duration'
import { BaseCommand } from '../cli/base-command'
import type { AcceptErrorStatus } from '../control/protocol'

export default class Status extends BaseCommand {
  static override description = "Check that the proxy answers; print its version, workers, services, uptime and how late the primary's event loop ran. " +
    'Exit 0 when it answers and every worker could accept connections for the last 5 seconds, else 1.'

  static override examples = ['<%= config.bin %> status']

  static override flags = {
    json: Flags.boolean({ description: 'Print JSON [default: false]' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Status)
    const status = await this.control(flags['state-dir']).status()
    if (flags.json) {
      this.log(JSON.stringify(status))
    } else {
      const uptime = formatDuration(Math.floor(status.uptimeMs / 1000) * 1000)
      const delay = status.eventLoopDelay
      this.log(`mproxy ${status.version} running (pid ${status.pid}): ${status.workers} workers, ` +
        `${status.services} services, http port ${status.httpPort}, https port ${status.httpsPort || `off (${status.httpsError})`}, ` +
        `${status.metricsPort ? `metrics port ${status.metricsPort}, ` : ''}` +
        `up ${uptime}; state in ${status.state}${status.node ? `; node ${status.node}` : ''}; ` +
        `event loop delay p50 ${delay.p50Ms.toFixed(1)} ms, p99 ${delay.p99Ms.toFixed(1)} ms, max ${delay.maxMs.toFixed(1)} ms`)
    }
    // Trouble is one `Error:` line (and exit 1), naming every worker that reported it.
    if (status.acceptErrors.length > 0) throw new NotAcceptingError(status.acceptErrors.map(describeAcceptError).join('; '))
  }
}

function describeAcceptError(report: AcceptErrorStatus): string {
  return `worker ${report.worker} (pid ${report.pid}) cannot accept connections: ${report.error}, ` +
    `last seen ${(report.lastSeenMsAgo / 1000).toFixed(1)}s ago`
}
