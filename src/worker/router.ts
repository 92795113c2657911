/**
 * Host and path → service matching, pure and without I/O.
 *
 * Host order: exact host (case-insensitive, port ignored), then a one-label wildcard
 * (`*.example.com` matches `a.example.com`, not `a.b.example.com`), then the services with no
 * host. The first level that has services for the host decides: within it the longest matching
 * path prefix wins, and if none matches the answer is 404 (no falling through to a wildcard or
 * default service, which would serve one app's paths from another).
 */
export interface Routable {
  hosts: readonly string[]
  /** `/` serves every path; `/api` serves `/api` and `/api/...`. */
  pathPrefixes: readonly string[]
}

/** A service bound to one path prefix of a host. */
export interface Binding<T> {
  /** `/` for the root service of the host. */
  readonly prefix: string
  readonly service: T
}

const SLASH = 47
const QUESTION_MARK = 63

export class Router<T extends Routable> {
  readonly #exact = new Map<string, Binding<T>[]>()
  readonly #wildcard = new Map<string, Binding<T>[]>()
  readonly #fallback: Binding<T>[] = []

  constructor(services: readonly T[]) {
    for (const service of services) {
      const bindings = service.pathPrefixes.map((prefix) => ({ prefix, service }))
      if (service.hosts.length === 0) this.#fallback.push(...bindings)
      for (const host of service.hosts) {
        const [map, key] = host.startsWith('*.') ? [this.#wildcard, host.slice(2)] : [this.#exact, host]
        map.set(key, [...(map.get(key) ?? []), ...bindings])
      }
    }
    for (const list of [...this.#exact.values(), ...this.#wildcard.values(), this.#fallback]) {
      list.sort((a, b) => b.prefix.length - a.prefix.length)
    }
  }

  /** The binding for a request's Host header and target (`/path?query`). */
  match(hostHeader: string | undefined, target: string): Binding<T> | undefined {
    return matchPrefix(this.#bindingsFor(hostHeader), target)
  }

  /** The services of a host, whatever the path (for redirects that do not depend on it). */
  #bindingsFor(hostHeader: string | undefined): Binding<T>[] {
    const host = hostHeader ? hostOnly(hostHeader) : ''
    if (host !== '') {
      const exact = this.#exact.get(host)
      if (exact) return exact
      const dot = host.indexOf('.')
      if (dot > 0) {
        const wildcard = this.#wildcard.get(host.slice(dot + 1))
        if (wildcard) return wildcard
      }
    }
    return this.#fallback
  }
}

/** The longest prefix (bindings come sorted) that `target` is under; no string is built. */
function matchPrefix<T>(bindings: readonly Binding<T>[], target: string): Binding<T> | undefined {
  for (const binding of bindings) {
    const { prefix } = binding
    if (prefix === '/') return binding
    if (!target.startsWith(prefix)) continue
    const next = target.charCodeAt(prefix.length)
    if (Number.isNaN(next) || next === SLASH || next === QUESTION_MARK) return binding
  }
  return undefined
}

/** Whether a request target (`/path?query`) is `path`, whatever the query; no string is built. */
export function isPath(target: string, path: string): boolean {
  return target.startsWith(path) && (target.length === path.length || target.charCodeAt(path.length) === QUESTION_MARK)
}

/**
 * The request target as the service's app sees it: the prefix removed (`/api/users?x` →
 * `/users?x`, `/api` → `/`), the query untouched.
 */
export function stripPrefix(target: string, prefix: string): string {
  const rest = target.slice(prefix.length)
  return rest.charCodeAt(0) === SLASH ? rest : `/${rest}`
}

/** `App.Example.com:8080` → `app.example.com`; `[::1]:80` → `[::1]`. */
export function hostOnly(hostHeader: string): string {
  let host = hostHeader
  const colon = host.lastIndexOf(':')
  if (colon !== -1 && host.indexOf(']') < colon) host = host.slice(0, colon)
  if (host.endsWith('.')) host = host.slice(0, -1)
  return host.toLowerCase()
}
