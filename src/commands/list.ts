import { Flags } from '@oclif/core'
import type { ServiceStatus } from '../control/protocol'
import { BaseCommand } from '../cli/base-command'
import { formatDuration } from '../lib/duration'

export default class List extends BaseCommand {
  static override description = 'List services with their hosts, targets, health and requests in flight, and the nodes of the fleet when Redis is used.'
  static override hiddenAliases = ['ls']
  static override examples = ['<%= config.bin %> list', '<%= config.bin %> list --json']

  static override flags = {
    json: Flags.boolean({ description: 'Print JSON [default: false]' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(List)
    const { services, nodes, nodesError } = await this.control(flags['state-dir']).list()
    if (flags.json) {
      this.log(JSON.stringify({ services, nodes, nodesError }, null, 2))
      return
    }
    const rows = [['SERVICE', 'HOSTS', 'TLS', 'TARGET', 'HEALTH', 'IN FLIGHT']]
    for (const service of services) {
      const tls = describeTls(service)
      for (const target of service.targets) {
        rows.push([service.name, describeRoutes(service), tls, target.address, target.health, String(target.inflight)])
      }
    }
    this.#printTable(rows)
    if (nodesError) this.log(`\nnodes: unknown (${nodesError})`)
    if (!nodes) return
    this.log('')
    const now = Date.now()
    this.#printTable([['NODE', 'STATE', 'LAST HEARTBEAT', 'REVISION'], ...nodes.map((node) => [
      node.name,
      node.live ? (node.self ? 'live (this node)' : 'live') : 'gone',
      node.live ? `${formatDuration(Math.max(0, now - Date.parse(node.lastHeartbeatAt)))} ago` : node.lastHeartbeatAt,
      String(node.revision),
    ])])
  }

  #printTable(rows: string[][]): void {
    const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
    for (const row of rows) this.log(row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd())
  }
}

/**
 * `app.test,www.test` for a whole host; `app.test/api` with a prefix; `*` for any host; the
 * canonical host marked `app.test(canonical)` (listed after `*` when every host goes to it).
 */
function describeRoutes({ hosts, pathPrefixes, canonicalHost }: ServiceStatus): string {
  const names = hosts.length > 0 ? hosts : canonicalHost ? ['*', canonicalHost] : ['*']
  const whole = pathPrefixes.length === 1 && pathPrefixes[0] === '/'
  return names.flatMap((host) => {
    const mark = host === canonicalHost ? '(canonical)' : ''
    return whole ? [`${host}${mark}`] : pathPrefixes.map((prefix) => `${host}${prefix}${mark}`)
  }).join(',')
}

/** One cell: `no`, `valid until DATE`, `pending`, or `failing: last error`. */
function describeTls(service: ServiceStatus): string {
  if (!service.tls) return 'no'
  const failing = service.certificates.find((certificate) => certificate.state === 'failing')
  if (failing) return `failing: ${failing.error}`
  if (service.certificates.some((certificate) => certificate.state === 'pending')) return 'pending'
  const until = service.certificates.map((certificate) => certificate.notAfter ?? '').sort()[0]
  return `valid until ${until.slice(0, 10)}`
}
