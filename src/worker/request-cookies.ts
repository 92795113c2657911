/** Reading one cookie of a request's Cookie header, without parsing the others. Pure. */

/** The value of the cookie `name` in a Cookie header, if present. */
export function cookieValue(cookieHeader: string | undefined, name: string): string | undefined {
  if (cookieHeader === undefined) return undefined
  let start = cookieHeader.indexOf(name)
  while (start !== -1) {
    const before = start === 0 ? ';' : cookieHeader[start - 1]
    const after = start + name.length
    if ((before === ';' || before === ' ') && cookieHeader[after] === '=') {
      const end = cookieHeader.indexOf(';', after + 1)
      return cookieHeader.slice(after + 1, end === -1 ? undefined : end).trim()
    }
    start = cookieHeader.indexOf(name, after)
  }
  return undefined
}
