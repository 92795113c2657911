/**
 * Header rewriting between client and upstream, pure functions.
 *
 * Plain requests: the upstream headers are built in one pass over the client's raw headers
 * (names keep their case, duplicates stay separate) into the flat `[name, value, ...]` array the
 * upstream client takes. Upgrades go through http-proxy-3, which reads `req.headers`: the same
 * rules are applied to that object.
 *
 * - Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection only: forwarding the client's
 *   `Connection: close` would close the pooled upstream connection on every request.
 *   `Transfer-Encoding` goes too: the upstream client frames the body itself.
 * - `Expect` goes: the worker's server has already answered `100 Continue`.
 * - What a client says about where a request came from (`Forwarded`, `X-Forwarded-*`,
 *   `X-Real-IP`, ...) is dropped unless it is trusted (the peer is a `--trusted-proxy`, or the
 *   service was deployed with `--forward-headers`); mproxy sets its own. Trusted values are
 *   kept, and X-Forwarded-For is appended to.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { BlockList } from 'node:net'

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding',
  'upgrade', 'proxy-authenticate', 'proxy-authorization', 'expect'])
/** Headers a client could use to pass itself off as someone else, or as arriving over TLS. */
const CLIENT_CLAIMS = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host',
  'x-forwarded-ssl', 'x-forwarded-scheme', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip',
  'true-client-ip', 'x-client-ip', 'x-request-start'])
/** Connection tokens that name no other header: no second pass is needed for them. */
const PLAIN_CONNECTION_TOKENS = new Set(['keep-alive', 'close', 'upgrade', 'te'])
const MAX_REQUEST_ID_LENGTH = 200

export interface ForwardingContext {
  /** The peer address (see `clientAddress`). */
  client: string
  encrypted: boolean
  /** The client's forwarding headers are kept and appended to; otherwise they are replaced. */
  trusted: boolean
  /** When the request arrived, in ms since the epoch: sent as `X-Request-Start: t=<ms>`. */
  receivedAtMs: number
}

/** What the pipeline needs to know of a request head, read in the same pass. */
export interface RequestHead {
  /** The Host header ('' when missing). */
  host: string
  /** The client's X-Request-Id when usable, else a new one; sent upstream either way. */
  requestId: string
  /** A body follows the head (Content-Length above 0, or Transfer-Encoding). */
  hasBody: boolean
  /** Flat `[name, value, ...]` headers for the upstream. */
  upstreamHeaders: string[]
}

/** The peer address without the IPv4-mapped prefix a dual-stack listener adds. */
export function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? ''
  return address.startsWith('::ffff:') ? address.slice(7) : address
}

/** Whether `client` (see `clientAddress`) is one of the `--trusted-proxy` networks. */
export function isTrustedProxy(client: string, trustedProxies: BlockList | undefined): boolean {
  return trustedProxies !== undefined && client !== '' && trustedProxies.check(client, client.includes(':') ? 'ipv6' : 'ipv4')
}

/**
 * Reads a request's raw headers (`req.rawHeaders`) into `head`. A second pass over the same
 * request (to trust what the first dropped) keeps the request id the first one generated.
 */
export function readRequestHead(raw: readonly string[], ctx: ForwardingContext, head: RequestHead): void {
  const trusted = ctx.trusted
  const out: string[] = []
  let host = ''
  let requestId = ''
  let hasBody = false
  let forwardedFor = ''
  let keptProto = false
  let keptHost = false
  let keptStart = false
  let connectionNames: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]
    const value = raw[i + 1]
    const lower = name.toLowerCase()
    if (lower === 'host') host = value
    else if (lower === 'content-length') hasBody ||= value !== '0'
    else if (lower === 'transfer-encoding') hasBody = true
    else if (lower === 'x-request-id') {
      if (requestId === '' && value !== '' && value.length <= MAX_REQUEST_ID_LENGTH) requestId = value
      continue
    } else if (lower === 'connection') connectionNames = namedByConnection(value, connectionNames)
    if (HOP_BY_HOP.has(lower)) continue
    if (CLIENT_CLAIMS.has(lower)) {
      if (!trusted) continue
      if (lower === 'x-forwarded-for') {
        forwardedFor = forwardedFor === '' ? value : `${forwardedFor}, ${value}`
        continue
      }
      keptProto ||= lower === 'x-forwarded-proto'
      keptHost ||= lower === 'x-forwarded-host'
      keptStart ||= lower === 'x-request-start'
    }
    out.push(name, value)
  }
  if (connectionNames) removeNamed(out, connectionNames)
  if (requestId === '') requestId = head.requestId !== '' ? head.requestId : randomUUID()
  out.push('x-forwarded-for', forwardedFor === '' ? ctx.client : `${forwardedFor}, ${ctx.client}`)
  if (!keptProto) out.push('x-forwarded-proto', ctx.encrypted ? 'https' : 'http')
  if (!keptHost) out.push('x-forwarded-host', host)
  out.push('x-request-id', requestId)
  // A trusted front proxy's start time is the earlier one: queue time includes its hop.
  if (!keptStart) out.push('x-request-start', `t=${ctx.receivedAtMs}`)
  head.host = host
  head.requestId = requestId
  head.hasBody = hasBody
  head.upstreamHeaders = out
}

/**
 * The upstream's response headers for the client, flat, without hop-by-hop ones. The client's
 * own connection decides keep-alive: `close` is added when it must end after this answer.
 */
export function clientResponseHeaders(headers: IncomingHttpHeaders, close: boolean): (string | string[])[] {
  const out: (string | string[])[] = []
  const connection = headers.connection
  const named = typeof connection === 'string' ? namedByConnection(connection, undefined) : undefined
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP.has(name) || named?.includes(name)) continue
    out.push(name, value)
  }
  if (close) out.push('connection', 'close')
  return out
}

/** The same rules for an upgrade, on `req.headers` (which http-proxy-3 forwards). */
export function rewriteUpgradeHeaders(headers: IncomingHttpHeaders, ctx: ForwardingContext): string {
  const trusted = ctx.trusted
  for (const name of Object.keys(headers)) {
    if (name === 'connection' || name === 'upgrade') continue
    if (HOP_BY_HOP.has(name) || (!trusted && CLIENT_CLAIMS.has(name))) delete headers[name]
  }
  const xff = headers['x-forwarded-for']
  headers['x-forwarded-for'] = trusted && xff ? `${xff}, ${ctx.client}` : ctx.client
  headers['x-forwarded-proto'] ??= ctx.encrypted ? 'https' : 'http'
  headers['x-forwarded-host'] ??= headers.host ?? ''
  let requestId = headers['x-request-id']
  if (typeof requestId !== 'string' || requestId === '' || requestId.length > MAX_REQUEST_ID_LENGTH) {
    requestId = randomUUID()
    headers['x-request-id'] = requestId
  }
  headers['x-request-start'] ??= `t=${ctx.receivedAtMs}`
  return requestId
}

// Private

/** Header names a Connection header lists, beyond the tokens that are not header names. */
function namedByConnection(value: string, into: string[] | undefined): string[] | undefined {
  // The usual values, without splitting.
  if (value.length <= 10 && PLAIN_CONNECTION_TOKENS.has(value.toLowerCase())) return into
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase()
    if (name !== '' && !PLAIN_CONNECTION_TOKENS.has(name)) (into ??= []).push(name)
  }
  return into
}

function removeNamed(flat: string[], names: readonly string[]): void {
  for (let i = flat.length - 2; i >= 0; i -= 2) {
    if (names.includes(flat[i].toLowerCase())) flat.splice(i, 2)
  }
}
