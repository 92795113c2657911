/**
 * mproxy's answers in kamal-proxy's words: its `list` table, and its error messages for the
 * failures both proxies have (§1.10 of the behaviour reference). Other errors keep mproxy's text.
 */
import type { ServiceStatus } from '../control/protocol'
import { MproxyError } from '../errors'
import { CommandLineError } from './flags'
import { formatGoDuration } from './go-values'

/** Error messages by mproxy error code; the deploy timeout completes the health one. */
export function kamalErrorMessage(err: unknown, deployTimeout?: bigint): string {
  const code = err instanceof MproxyError ? err.code : undefined
  switch (code) {
    case 'MPROXY_ERR_HOST_IN_USE': return 'host settings conflict with another service'
    case 'MPROXY_ERR_SERVICE_NOT_FOUND': return 'service not found'
    case 'MPROXY_ERR_ROLLOUT_NOT_SET': return 'rollout target not set'
    case 'MPROXY_ERR_INVALID_CERTIFICATE': return 'unable to load certificate'
    case 'MPROXY_ERR_TARGET_UNHEALTHY':
      if (deployTimeout !== undefined) return `target failed to become healthy within configured timeout (${formatGoDuration(deployTimeout)})`
  }
  // The command line's own messages may be several lines (cobra's suggestions); the proxy's are one.
  if (err instanceof CommandLineError) return err.message
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]
}

const HEADER_STYLE = '3;94'
const NAME_STYLE = '1;34'
const CELL_STYLE = ''

/**
 * kamal-proxy's `list`: Service, Host, Path, Target, State, TLS; sorted by name; each cell in
 * ANSI style codes, padded to its column and followed by two spaces.
 */
export function formatServiceTable(services: readonly ServiceStatus[]): string {
  const rows = [['Service', 'Host', 'Path', 'Target', 'State', 'TLS']]
  const sorted = [...services].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const service of sorted) {
    // Writers, then readers (they are listed in that order).
    const targets = service.targets.filter((target) => target.slot !== 'rollout' && target.health !== 'draining')
    rows.push([
      service.name,
      service.hosts.length > 0 ? service.hosts.join(',') : '*',
      service.pathPrefixes.join(','),
      targets.map((target) => target.address).join(','),
      service.state,
      service.tls ? 'yes' : 'no',
    ])
  }
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
  return rows.map((row, index) => row.map((cell, column) => {
    const style = index === 0 ? HEADER_STYLE : column === 0 ? NAME_STYLE : CELL_STYLE
    return `\x1b[${style}m${cell}\x1b[0m${' '.repeat(widths[column] - cell.length)}  `
  }).join('') + '\n').join('')
}
