/**
 * The headers a service logs (`--log-request-header`, `--log-response-header`): extra fields of
 * its access log lines, `req_<name>` and `resp_<name>` (lower case, `-` as `_`). Several values
 * of a header are joined by `,`; a header that is absent logs as an empty string, so every line of
 * the service has the same fields.
 *
 * The field names are made once per route table, the values when the line is written: services
 * that log no header pay nothing.
 */

/** Response headers as the upstream client or mproxy's own answers give them. */
export type HeaderValues = Readonly<Record<string, string | string[] | number | undefined>>

export class HeaderLog {
  readonly #request: readonly string[]
  readonly #requestKeys: readonly string[]
  readonly #response: readonly string[]
  readonly #responseKeys: readonly string[]

  /** Header names in lower case; undefined when there are none (nothing to log). */
  static for(requestHeaders: readonly string[], responseHeaders: readonly string[]): HeaderLog | undefined {
    return requestHeaders.length === 0 && responseHeaders.length === 0 ? undefined : new HeaderLog(requestHeaders, responseHeaders)
  }

  private constructor(requestHeaders: readonly string[], responseHeaders: readonly string[]) {
    this.#request = requestHeaders
    this.#requestKeys = requestHeaders.map((name) => `,${JSON.stringify(logFieldName('req', name))}:`)
    this.#response = responseHeaders
    this.#responseKeys = responseHeaders.map((name) => `,${JSON.stringify(logFieldName('resp', name))}:`)
  }

  /**
   * The fields as a JSON fragment to end a line written by hand: `,"req_x_a":"1","resp_x_b":""`.
   * `rawRequestHeaders` is `req.rawHeaders` (what the client sent); `responseHeaders` what the
   * client was answered with, undefined when it got no head.
   */
  fields(rawRequestHeaders: readonly string[], responseHeaders: HeaderValues | undefined): string {
    let out = ''
    for (let i = 0; i < this.#request.length; i++) {
      out += this.#requestKeys[i] + JSON.stringify(requestHeaderValue(rawRequestHeaders, this.#request[i]))
    }
    for (let i = 0; i < this.#response.length; i++) {
      out += this.#responseKeys[i] + JSON.stringify(responseHeaderValue(responseHeaders, this.#response[i]))
    }
    return out
  }

  /** Whether response headers are logged (upgrades only keep theirs when they are). */
  get logsResponses(): boolean {
    return this.#response.length > 0
  }
}

/** `X-Custom-ID` → `req_x_custom_id`. */
export function logFieldName(prefix: 'req' | 'resp', header: string): string {
  return `${prefix}_${header.toLowerCase().replaceAll('-', '_')}`
}

/** Every value of a header (`name` in lower case) in a raw header list, joined by `,`. */
export function requestHeaderValue(raw: readonly string[], name: string): string {
  let out: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const header = raw[i]
    if (header.length !== name.length || header.toLowerCase() !== name) continue
    out = out === undefined ? raw[i + 1] : `${out},${raw[i + 1]}`
  }
  return out ?? ''
}

/** A response header's value (`name` in lower case), arrays joined by `,`. */
export function responseHeaderValue(headers: HeaderValues | undefined, name: string): string {
  const value = headers?.[name]
  if (value === undefined) return ''
  return Array.isArray(value) ? value.join(',') : String(value)
}
