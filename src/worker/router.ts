/**
 * Host → service matching, pure and without I/O. Order: exact host (case-insensitive, port
 * ignored), then a one-label wildcard (`*.example.com` matches `a.example.com`, not
 * `a.b.example.com`), then the service with no host.
 */
export interface Routable {
  hosts: readonly string[]
}

export class HostRouter<T extends Routable> {
  readonly #exact = new Map<string, T>()
  readonly #wildcard = new Map<string, T>()
  #fallback: T | undefined

  constructor(services: readonly T[]) {
    for (const service of services) {
      if (service.hosts.length === 0) this.#fallback = service
      for (const host of service.hosts) {
        if (host.startsWith('*.')) this.#wildcard.set(host.slice(2), service)
        else this.#exact.set(host, service)
      }
    }
  }

  match(hostHeader: string | undefined): T | undefined {
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

/** `App.Example.com:8080` → `app.example.com`; `[::1]:80` → `[::1]`. */
export function hostOnly(hostHeader: string): string {
  let host = hostHeader
  const colon = host.lastIndexOf(':')
  if (colon !== -1 && host.indexOf(']') < colon) host = host.slice(0, colon)
  if (host.endsWith('.')) host = host.slice(0, -1)
  return host.toLowerCase()
}
