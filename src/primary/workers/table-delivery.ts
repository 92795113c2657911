/**
 * What a worker is sent of a route table. Certificates (and TLS-ALPN-01 challenge certificates)
 * are most of a table's bytes with TLS on many hosts, and change rarely: a worker gets them only
 * when they differ from the ones in the last table it was sent.
 */
import { createHash } from 'node:crypto'
import type { RouteTable } from '../../ipc/messages'

/** Identifies the certificates of a table: equal keys, equal certificates. */
export function certificatesKey(table: RouteTable): string {
  const hash = createHash('sha256')
  for (const list of [table.certificates ?? [], table.acmeTlsChallenges ?? []]) {
    for (const { hosts, cert, key } of list) hash.update(`${hosts.join(',')}\n${cert}\n${key}\n`)
    hash.update('--\n')
  }
  return hash.digest('base64')
}

/** The table to send a worker that already holds certificates with `sentKey`. */
export function tableFor(table: RouteTable, key: string, sentKey: string | undefined): RouteTable {
  if (sentKey !== key) return table
  const { certificates: _certificates, acmeTlsChallenges: _challenges, ...rest } = table
  return rest
}
