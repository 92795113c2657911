/**
 * The redirects a service asks for, pure: plain HTTP to HTTPS (`--tls-redirect`) and its other
 * hosts to its canonical host (`--canonical-host`). Both together make one redirect, so that
 * `http://www.example.com/x` goes straight to `https://example.com/x`.
 *
 * The request target is kept as the client wrote it, byte for byte (path and query, escapes
 * untouched). The port: a redirect to HTTPS from plain HTTP points at the HTTPS port mproxy
 * listens on (left out when 443); any other redirect keeps the port of the Host header, the one
 * the client used.
 */
import { isIP } from 'node:net'
import { hostOnly } from './router'

export interface RedirectRules {
  /** Requests for any other host are redirected to this one ('' for none); lower case, IPv6 in brackets. */
  readonly canonicalHost: string
  /** Plain HTTP is redirected to HTTPS. */
  readonly tlsRedirect: boolean
}

const SLASH = 47
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/

/**
 * Where a request goes instead of being served (for a 301), or undefined when it is served.
 * `httpsPort` is only called for a redirect from HTTP to HTTPS.
 */
export function redirectLocation(rules: RedirectRules, hostHeader: string, target: string, encrypted: boolean, httpsPort: () => number): string | undefined {
  const toHttps = rules.tlsRedirect && !encrypted
  const { canonicalHost } = rules
  if (canonicalHost === '' && !toHttps) return undefined
  const host = hostOnly(hostHeader)
  if (host === canonicalHost && !toHttps) return undefined
  const scheme = toHttps || encrypted ? 'https' : 'http'
  const port = toHttps ? portSuffix(httpsPort(), 443) : hostPort(hostHeader)
  return `${scheme}://${canonicalHost === '' ? host : canonicalHost}${port}${originForm(target)}`
}

/** A host name as it appears in a URL and in `hostOnly`'s result: IPv6 addresses in brackets. */
export function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host
}

/**
 * The path and query of a request target: as it is for the usual `/path?query`; the part after
 * the authority for an absolute URL (`http://a.test/x` → `/x`); `/` for anything else (`*`).
 */
export function originForm(target: string): string {
  if (target.charCodeAt(0) === SLASH) return target
  const authority = ABSOLUTE_FORM.exec(target)
  if (!authority) return '/'
  const rest = target.slice(authority[0].length)
  return rest.charCodeAt(0) === SLASH ? rest : `/${rest}`
}

// Private

function portSuffix(port: number, defaultPort: number): string {
  return port === defaultPort ? '' : `:${port}`
}

/** `:8080` of `example.com:8080` or `[::1]:8080`; '' without a port. */
function hostPort(hostHeader: string): string {
  const colon = hostHeader.lastIndexOf(':')
  if (colon === -1 || hostHeader.indexOf(']') > colon) return ''
  const port = hostHeader.slice(colon + 1)
  return /^\d{1,5}$/.test(port) ? `:${port}` : ''
}
