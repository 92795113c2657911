import { isIP } from 'node:net'
import { InvalidHostError, InvalidOptionError, InvalidTargetError } from '../errors'

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/

/** True for a DNS name made of valid labels (letters, digits, inner hyphens), or an IP address. */
function isHostname(name: string): boolean {
  if (isIP(name)) return true
  if (name.length === 0 || name.length > 253) return false
  return name.split('.').every((label) => LABEL.test(label))
}

/**
 * Normalizes a target `host:port` (`web-1:3000`, `10.0.0.5:8080`, `[::1]:3000`) and refuses
 * anything else, so a typo fails the deploy instead of becoming an unreachable upstream.
 */
export function normalizeTarget(input: string): string {
  const text = input.trim().toLowerCase()
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]\s/]+):(\d{1,5})$/.exec(text)
  if (!match) throw new InvalidTargetError(`invalid target "${input}": expected host:port, e.g. web-1:3000`)
  const [, host, portText] = match
  const port = Number(portText)
  if (port < 1 || port > 65535) throw new InvalidTargetError(`invalid target "${input}": port must be 1-65535`)
  const bare = host.startsWith('[') ? host.slice(1, -1) : host
  if (host.startsWith('[') ? isIP(bare) !== 6 : !isHostname(bare)) {
    throw new InvalidTargetError(`invalid target "${input}": "${bare}" is not a valid host name or IP address`)
  }
  return `${host}:${port}`
}

/** A normalized target's host (IPv6 without brackets) and port, as node:net and node:http take them. */
export function splitTarget(target: string): { host: string; port: number } {
  const colon = target.lastIndexOf(':')
  return { host: target.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(target.slice(colon + 1)) }
}

/**
 * Normalizes a host name to route on: lower case, no trailing dot, optionally a one-label
 * wildcard (`*.example.com`). Ports are not part of a route.
 */
export function normalizeHost(input: string): string {
  const text = input.trim().toLowerCase().replace(/\.$/, '')
  const name = text.startsWith('*.') ? text.slice(2) : text
  if (!isHostname(name) || isIP(name) && text !== name) {
    throw new InvalidHostError(`invalid host "${input}": expected a name like app.example.com or *.example.com`)
  }
  return text
}

/** An HTTP header name (RFC 9110 token), in lower case. `what` names the option in the error. */
export function normalizeHeaderName(input: string, what: string): string {
  const name = input.trim().toLowerCase()
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw new InvalidOptionError(`invalid header name "${input}" for ${what}`)
  return name
}

/** Splits repeated and comma-separated values (`--host a --host b,c`) into one list. */
export function splitList(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap((value) => value.split(',')).map((value) => value.trim()).filter(Boolean)
}

/** A service name is used in logs, the CLI and state keys: keep it to a safe character set. */
export function validateServiceName(name: string): string {
  // A name derived from a wildcard host keeps its `*.` prefix.
  if (!/^(\*\.)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) {
    throw new InvalidOptionError(`invalid service name "${name}": use letters, digits, ".", "-" or "_"`)
  }
  return name
}

/** A health-check path is sent as-is in a request line: it must be an absolute path. */
export function validatePath(path: string): string {
  if (!/^\/[^\s]*$/.test(path)) throw new InvalidOptionError(`invalid health check path "${path}": must start with /`)
  return path
}
