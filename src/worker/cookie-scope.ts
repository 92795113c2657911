/**
 * Cookie path scoping for a service served under a stripped prefix: the app thinks it lives at
 * `/`, so it sets `Path=/`; the browser must send that cookie back only under `/api`, or two
 * apps on one host would overwrite each other's session cookies.
 */

/**
 * Rewrites the `Path` of each cookie set for the request's host (no `Domain`, or exactly the
 * host) to sit under `prefix`: `Path=/` or none → `Path=/api`, `Path=/admin` → `Path=/api/admin`.
 * Cookies for other domains are left alone.
 */
export function scopeCookies(cookies: string | readonly string[], prefix: string, host: string): string[] {
  // The upstream client gives one Set-Cookie as a string, several as an array.
  if (typeof cookies === 'string') return [scopeCookie(cookies, prefix, host)]
  return cookies.map((cookie) => scopeCookie(cookie, prefix, host))
}

function scopeCookie(cookie: string, prefix: string, host: string): string {
  const parts = cookie.split(';')
  let pathIndex = -1
  for (let i = 1; i < parts.length; i++) {
    const [name, ...value] = parts[i].split('=')
    const attribute = name.trim().toLowerCase()
    if (attribute === 'domain') {
      const domain = value.join('=').trim().replace(/^\./, '').toLowerCase()
      if (domain !== '' && domain !== host) return cookie
    } else if (attribute === 'path') {
      pathIndex = i
    }
  }
  const current = pathIndex === -1 ? '' : parts[pathIndex].split('=').slice(1).join('=').trim()
  const trimmed = current.replace(/^\/+|\/+$/g, '')
  const scoped = ` Path=${prefix}${trimmed === '' ? '' : `/${trimmed}`}`
  if (pathIndex === -1) parts.push(scoped)
  else parts[pathIndex] = scoped
  return parts.join(';')
}
