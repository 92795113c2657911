/**
 * Reads and writes of a service with read targets (replicas): GET and HEAD are reads and may go
 * to a read target; anything else is a write and goes to the writers. A client that has just
 * written carries the `kamal-writer` cookie for the writer affinity timeout, and its reads go to
 * the writers meanwhile, so it reads what it wrote before the replicas have it. Pure.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { cookieValue } from './request-cookies'

export const WRITER_COOKIE = 'kamal-writer'
/** An app's answer with `X-Writer-Affinity: false` sets no cookie (a write that changed nothing). */
export const WRITER_AFFINITY_HEADER = 'x-writer-affinity'

/** GET or HEAD (methods are case-sensitive: `get` is not GET). */
export function isRead(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD'
}

/**
 * The Set-Cookie value for a write answered at `nowMs`: its value is the expiry in Unix ms,
 * which the proxy compares; the cookie itself outlives it by a second, as the attribute has
 * one-second precision.
 */
export function writerAffinityCookie(nowMs: number, timeoutMs: number): string {
  const expiry = nowMs + timeoutMs
  return `${WRITER_COOKIE}=${expiry}; Path=/; Expires=${new Date(expiry + 1_000).toUTCString()}; HttpOnly`
}

/** Whether a Cookie header carries a `kamal-writer` expiry after `nowMs`. */
export function hasWriterAffinity(cookieHeader: string | undefined, nowMs: number): boolean {
  const value = cookieValue(cookieHeader, WRITER_COOKIE)
  if (value === undefined || !/^\d+$/.test(value)) return false
  return Number(value) > nowMs
}

/**
 * An upstream answer of a service with writer affinity: its `X-Writer-Affinity` header is
 * removed, and the answer to a write gets the cookie unless that header said `false`.
 */
export function applyWriterAffinity(headers: IncomingHttpHeaders, method: string | undefined, timeoutMs: number, nowMs: number): void {
  const optOut = String(headers[WRITER_AFFINITY_HEADER] ?? '').trim().toLowerCase() === 'false'
  delete headers[WRITER_AFFINITY_HEADER]
  if (optOut || isRead(method)) return
  const cookie = writerAffinityCookie(nowMs, timeoutMs)
  // The upstream client gives one Set-Cookie as a string, several as an array.
  const cookies: string | string[] | undefined = headers['set-cookie']
  headers['set-cookie'] = cookies === undefined ? [cookie] : Array.isArray(cookies) ? [...cookies, cookie] : [cookies, cookie]
}
