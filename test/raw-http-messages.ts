/**
 * HTTP/1.1 messages at the bytes, for the raw-socket helpers: parsing what a raw client received
 * and what a raw upstream was sent, and writing a minimal response. Pure functions, no sockets.
 */

export interface RawResponse {
  status: number
  /** The status line and header lines, as received, without the final empty line. */
  head: string
  /** Header name in lower case → every value, in order. */
  headers: Map<string, string[]>
  /** The body, de-chunked. */
  body: Buffer
  /** The body is whole according to its framing (Content-Length or chunked). */
  complete: boolean
}

/**
 * Parses the first final response in `data`, skipping interim ones (100 Continue). A 101
 * response ends at its head. A response without framing is never complete: its body lasts
 * until the connection closes. Undefined while the head is incomplete.
 */
export function parseResponse(data: Buffer): RawResponse | undefined {
  let offset = 0
  for (;;) {
    const headEnd = data.indexOf('\r\n\r\n', offset, 'latin1')
    if (headEnd < 0) return undefined
    const head = data.subarray(offset, headEnd).toString('latin1')
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? NaN)
    const headers = parseHeaderLines(head.split('\r\n').slice(1))
    const bodyStart = headEnd + 4
    if (status >= 100 && status < 200 && status !== 101) {
      offset = bodyStart
      continue
    }
    if (status === 101 || status === 204 || status === 304) return { status, head, headers, body: Buffer.alloc(0), complete: true }
    const length = headers.get('content-length')?.[0]
    if (length !== undefined) {
      const body = data.subarray(bodyStart, bodyStart + Number(length))
      return { status, head, headers, body, complete: body.length === Number(length) }
    }
    if (/chunked/i.test(headers.get('transfer-encoding')?.join(',') ?? '')) {
      const chunked = decodeChunked(data, bodyStart)
      return { status, head, headers, body: chunked.body, complete: chunked.end !== undefined }
    }
    return { status, head, headers, body: data.subarray(bodyStart), complete: false }
  }
}

function parseHeaderLines(lines: string[]): Map<string, string[]> {
  const headers = new Map<string, string[]>()
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()])
  }
  return headers
}

/** The chunks of a chunked body from `start`, and where it ends once the last chunk arrived. */
export function decodeChunked(data: Buffer, start: number): { body: Buffer; end: number | undefined } {
  const parts: Buffer[] = []
  let offset = start
  for (;;) {
    const lineEnd = data.indexOf('\r\n', offset, 'latin1')
    if (lineEnd < 0) break
    const size = parseInt(data.subarray(offset, lineEnd).toString('latin1'), 16)
    if (Number.isNaN(size)) break
    if (size === 0) {
      // Trailer section: header lines, then an empty line.
      const afterSize = lineEnd + 2
      const trailerEnd = data.subarray(afterSize, afterSize + 2).toString('latin1') === '\r\n'
        ? afterSize + 2
        : data.indexOf('\r\n\r\n', afterSize, 'latin1') + 4
      const end = trailerEnd >= afterSize + 2 ? trailerEnd : undefined
      return { body: Buffer.concat(parts), end }
    }
    if (data.length < lineEnd + 2 + size + 2) {
      parts.push(data.subarray(lineEnd + 2, Math.min(data.length, lineEnd + 2 + size)))
      break
    }
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size))
    offset = lineEnd + 2 + size + 2
  }
  return { body: Buffer.concat(parts), end: undefined }
}

/** A request as an upstream received it. */
export interface RequestMessage {
  /** The request line exactly as received, without its CRLF. */
  line: string
  method: string
  /** The request target exactly as received. */
  target: string
  /** Header lines as received: name (original case) and value. */
  rawHeaders: Array<[string, string]>
  /** The first value of a header, by case-insensitive name. */
  header(name: string): string | undefined
  /** The body, de-chunked (empty for upgrades: their bytes stay on the socket). */
  body: Buffer
}

/**
 * The first whole request in `data` and where it ends, or undefined while incomplete. The body of
 * an upgrade request is not read: what follows its head belongs to the new protocol.
 */
export function parseRequest(data: Buffer): { request: RequestMessage; end: number } | undefined {
  const headEnd = data.indexOf('\r\n\r\n', 0, 'latin1')
  if (headEnd < 0) return undefined
  const [line, ...headerLines] = data.subarray(0, headEnd).toString('latin1').split('\r\n')
  const [method = '', target = ''] = line.split(' ')
  const rawHeaders = headerLines.map((header): [string, string] => {
    const colon = header.indexOf(':')
    return [header.slice(0, colon), header.slice(colon + 1).trim()]
  })
  const header = (name: string): string | undefined => rawHeaders.find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1]
  const bodyStart = headEnd + 4
  let body: Buffer = Buffer.alloc(0)
  let end = bodyStart
  if (header('upgrade') === undefined) {
    if (/chunked/i.test(header('transfer-encoding') ?? '')) {
      const chunked = decodeChunked(data, bodyStart)
      if (chunked.end === undefined) return undefined
      body = chunked.body
      end = chunked.end
    } else {
      const length = Number(header('content-length') ?? 0)
      if (data.length < bodyStart + length) return undefined
      body = data.subarray(bodyStart, bodyStart + length)
      end = bodyStart + length
    }
  }
  return { request: { line, method, target, rawHeaders, header, body }, end }
}

/** `HTTP/1.1 <status>` with Content-Length and the given extra header lines. */
export function responseBytes(status: number, body = '', headers: Record<string, string> = {}): string {
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  return `HTTP/1.1 ${status} ${status === 200 ? 'OK' : 'Status'}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${lines}\r\n${body}`
}
