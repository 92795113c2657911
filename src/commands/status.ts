import { Flags } from '@oclif/core'
import { formatDuration } from '../lib/duration'
import { BaseCommand } from '../cli/base-command'

export default class Status extends BaseCommand {
  static override description = 'Check that the proxy answers; print its version, workers, services and uptime. Exit 0 when it answers.'
  static override examples = ['<%= config.bin %> status']

  static override flags = {
    json: Flags.boolean({ description: 'Print JSON [default: false]' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Status)
    const status = await this.control(flags['state-dir']).status()
    if (flags.json) {
      this.log(JSON.stringify(status))
      return
    }
    const uptime = formatDuration(Math.floor(status.uptimeMs / 1000) * 1000)
    this.log(`mproxy ${status.version} running (pid ${status.pid}): ${status.workers} workers, ` +
      `${status.services} services, http port ${status.httpPort}, https port ${status.httpsPort || `off (${status.httpsError})`}, ` +
      `up ${uptime}; state in ${status.state}${status.node ? `; node ${status.node}` : ''}`)
  }
}
