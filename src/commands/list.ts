import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command'

export default class List extends BaseCommand {
  static override description = 'List services with their hosts, targets, health and requests in flight.'
  static override hiddenAliases = ['ls']
  static override examples = ['<%= config.bin %> list', '<%= config.bin %> list --json']

  static override flags = {
    json: Flags.boolean({ description: 'Print JSON [default: false]' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(List)
    const { services } = await this.control(flags['state-dir']).list()
    if (flags.json) {
      this.log(JSON.stringify({ services }, null, 2))
      return
    }
    const rows = [['SERVICE', 'HOSTS', 'TLS', 'TARGET', 'HEALTH', 'IN FLIGHT']]
    for (const service of services) {
      const tls = !service.certificate ? 'no'
        : service.certificate.state === 'valid' ? `valid until ${service.certificate.notAfter?.slice(0, 10)}`
          : `failing: ${service.certificate.error}`
      for (const target of service.targets) {
        rows.push([service.name, service.hosts.join(',') || '*', tls, target.address, target.health, String(target.inflight)])
      }
    }
    const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
    for (const row of rows) this.log(row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd())
  }
}
