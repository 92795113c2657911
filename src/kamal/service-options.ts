/**
 * kamal-proxy's check of a service's options, run by its `deploy` before anything is sent, in
 * its order and with its messages (`service options invalid: ...`). mproxy's own checks apply
 * afterwards, to what the translation makes of the options.
 */
import { goQuote } from './go-values'

export interface KamalServiceOptions {
  hosts: string[]
  pathPrefixes: string[]
  tls: boolean
  tlsOnDemandUrl: string
  tlsCertificatePath: string
  tlsPrivateKeyPath: string
  canonicalHost: string
}

const PREFIX = 'service options invalid'

/** No host is `['']`, the default service; prefixes become `/` + the prefix without outer slashes. */
export function normalizeKamalHosts(hosts: readonly string[]): string[] {
  return hosts.length === 0 ? [''] : [...hosts]
}

export function normalizeKamalPathPrefixes(prefixes: readonly string[]): string[] {
  if (prefixes.length === 0) return ['/']
  return prefixes.map((prefix) => `/${prefix.replace(/^\/+|\/+$/g, '')}`)
}

/** The first rule the options break, as kamal-proxy words it; undefined when they are valid. */
export function serviceOptionsProblem(options: KamalServiceOptions): string | undefined {
  const hosts = normalizeKamalHosts(options.hosts)
  const prefixes = normalizeKamalPathPrefixes(options.pathPrefixes)
  const configuredHosts = hosts.length > 0 && !hosts.includes('')
  const invalid = (why: string) => `${PREFIX}: ${why}`
  if (options.tlsOnDemandUrl !== '' && !options.tls) return invalid('TLS must be enabled to use a TLS on-demand URL')
  if (options.tls) {
    if (options.tlsOnDemandUrl !== '') {
      if (configuredHosts) return invalid('cannot set hosts when using a TLS on-demand URL')
      if (options.tlsCertificatePath !== '' || options.tlsPrivateKeyPath !== '') return invalid('cannot use a custom TLS certificate with a TLS on-demand URL')
      if (options.canonicalHost !== '') return invalid('cannot set a canonical host when using a TLS on-demand URL')
      const urlProblem = onDemandUrlProblem(options.tlsOnDemandUrl)
      if (urlProblem) return invalid(urlProblem)
    } else if (!configuredHosts) {
      return invalid('host must be set when using TLS')
    }
    if (!prefixes.includes('/')) return invalid('TLS settings must be specified on the root path service')
  }
  if (options.canonicalHost !== '' && hosts[0] !== '' && !hosts.includes(options.canonicalHost)) {
    return invalid(`canonical-host '${options.canonicalHost}' must be present in the hosts list: [${hosts.join(' ')}]`)
  }
  return undefined
}

/** A path on the service itself, or an absolute http(s) URL with a host. */
function onDemandUrlProblem(url: string): string | undefined {
  if (url.startsWith('//')) return 'tls-on-demand-url must be a path or an absolute http(s) URL'
  const parseError = (why: string) => `unable to parse tls-on-demand-url: parse ${goQuote(url)}: ${why}`
  const badEscape = /%(?![0-9a-fA-F]{2})(.{0,2})/.exec(url)
  if (badEscape) return parseError(`invalid URL escape ${goQuote(`%${badEscape[1]}`)}`)
  if (/[\x00-\x1f\x7f]/.test(url)) return parseError('net/url: invalid control character in URL')
  if (url.startsWith('/')) return undefined
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)
  if (!scheme) return parseError('invalid URI for request')
  const name = scheme[1].toLowerCase()
  if (name !== 'http' && name !== 'https') return `unsupported scheme ${goQuote(name)} in tls-on-demand-url`
  const host = /^[^:]+:\/\/([^/?#]*)/.exec(url)?.[1].replace(/^[^@]*@/, '') ?? ''
  if (host === '') return 'missing host in tls-on-demand-url'
  return undefined
}
