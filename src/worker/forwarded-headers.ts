/**
 * Header rewriting between client and upstream, pure functions over header objects.
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection only; forwarding the client's
 * `Connection: close` would also close the pooled upstream connection on every request.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { randomUUID } from 'node:crypto'
import type { BlockList } from 'node:net'

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'proxy-authenticate', 'proxy-authorization', 'upgrade']

/** Removes hop-by-hop headers, and those the Connection header names; upgrades keep theirs. */
export function stripHopByHop(headers: IncomingHttpHeaders, isUpgrade = false): void {
  const connection = headers.connection
  if (connection !== undefined && !isUpgrade) {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase()
      if (name !== '' && headers[name] !== undefined) delete headers[name]
    }
  }
  for (const name of HOP_BY_HOP) {
    if (isUpgrade && (name === 'connection' || name === 'upgrade')) continue
    if (headers[name] !== undefined) delete headers[name]
  }
}

/**
 * The same for a response's headers, by setting them to undefined, which the copy onto the
 * client response skips: deleting would turn the header object into a slow dictionary.
 */
export function clearHopByHop(headers: IncomingHttpHeaders): void {
  const connection = headers.connection
  if (connection !== undefined) {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase()
      if (name !== '' && headers[name] !== undefined) headers[name] = undefined
    }
  }
  for (const name of HOP_BY_HOP) {
    if (headers[name] !== undefined) headers[name] = undefined
  }
}

/** The peer address without the IPv4-mapped prefix a dual-stack listener adds. */
export function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? ''
  return address.startsWith('::ffff:') ? address.slice(7) : address
}

export interface ForwardingContext {
  client: string
  encrypted: boolean
  /** Peers whose X-Forwarded-* values are kept and appended to; everyone else's are replaced. */
  trustedProxies: BlockList | undefined
}

/**
 * Sets X-Forwarded-For/Proto/Host and X-Request-Id. A client could claim any address in
 * X-Forwarded-For, so its value is only kept when the peer is a trusted proxy.
 */
export function setForwardedHeaders(headers: IncomingHttpHeaders, ctx: ForwardingContext): string {
  const trusted = ctx.trustedProxies !== undefined && ctx.client !== '' &&
    ctx.trustedProxies.check(ctx.client, ctx.client.includes(':') ? 'ipv6' : 'ipv4')
  const xff = headers['x-forwarded-for']
  headers['x-forwarded-for'] = trusted && xff ? `${xff}, ${ctx.client}` : ctx.client
  if (!trusted || headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = ctx.encrypted ? 'https' : 'http'
  if (!trusted || headers['x-forwarded-host'] === undefined) headers['x-forwarded-host'] = headers.host ?? ''
  let requestId = headers['x-request-id']
  if (typeof requestId !== 'string' || requestId === '' || requestId.length > 200) {
    requestId = randomUUID()
    headers['x-request-id'] = requestId
  }
  return requestId
}
