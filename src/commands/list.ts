import { Flags } from '@oclif/core'
import type { ServiceStatus, TargetStatus } from '../control/protocol'
import { BaseCommand } from '../cli/base-command'
import { formatDuration } from '../lib/duration'
import { formatSize } from '../lib/size'

export default class List extends BaseCommand {
  static override description = 'List services with their hosts, state (running, paused, stopped), targets, health and requests in flight, and the nodes of the fleet when Redis is used.'
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
    const rows = [['SERVICE', 'HOSTS', 'STATE', 'TLS', 'TARGET', 'HEALTH', 'IN FLIGHT']]
    for (const service of services) {
      const tls = describeTls(service)
      const state = service.held > 0 ? `${service.state} (${service.held} held)` : service.state
      for (const target of service.targets) {
        rows.push([service.name, describeRoutes(service), state, tls, describeTarget(service, target), target.health, String(target.inflight)])
      }
    }
    this.#printTable(rows)
    const bodies = services.flatMap((service) => {
      const rules = describeBuffering(service)
      return rules ? [[service.name, rules]] : []
    })
    if (bodies.length > 0) {
      this.log('')
      this.#printTable([['SERVICE', 'BUFFERING AND LIMITS'], ...bodies])
    }
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

/** `web-3:3000 (rollout 10%)` for a rollout target, `replica-1:3000 (reader)` for a read target. */
function describeTarget(service: ServiceStatus, target: TargetStatus): string {
  if (target.slot === 'reader') return `${target.address} (reader)`
  if (target.slot !== 'rollout') return target.address
  const split = service.rolloutSplit
  if (!split) return `${target.address} (rollout, no requests)`
  const listed = split.allowlist.length > 0 ? ` + ${split.allowlist.join(',')}` : ''
  return `${target.address} (rollout ${split.percent}%${listed})`
}

/** `requests, responses (1MiB in memory); max request body 50MB`, or '' when nothing applies. */
function describeBuffering({ buffering }: ServiceStatus): string {
  const parts: string[] = []
  const buffered = [buffering.requests && 'requests', buffering.responses && 'responses'].filter(Boolean)
  if (buffered.length > 0) parts.push(`buffers ${buffered.join(' and ')} (${formatSize(buffering.memoryBytes)} in memory)`)
  if (buffering.maxRequestBodyBytes > 0) parts.push(`max request body ${formatSize(buffering.maxRequestBodyBytes)}`)
  if (buffering.maxResponseBodyBytes > 0) parts.push(`max response body ${formatSize(buffering.maxResponseBodyBytes)}`)
  return parts.join('; ')
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
