import type { RouteTable } from '../src/ipc/messages'
import { certificatesKey, tableFor } from '../src/primary/workers/table-delivery'

const table = (certificates: RouteTable['certificates'], version = 1): RouteTable =>
  ({ version, services: [], certificates, acmeThumbprint: 't', acmeTlsChallenges: [] })
const A = { hosts: ['a.test'], cert: 'CERT-A', key: 'KEY-A' }
const B = { hosts: ['b.test'], cert: 'CERT-B', key: 'KEY-B' }

describe('certificatesKey', () => {
  it.each<[string, RouteTable, RouteTable, boolean]>([
    ['the same certificates in a later table', table([A], 1), table([A], 2), true],
    ['a certificate added', table([A]), table([A, B]), false],
    ['a certificate renewed (new PEM)', table([A]), table([{ ...A, cert: 'CERT-A2' }]), false],
    ['a certificate moved to another host', table([A]), table([{ ...A, hosts: ['c.test'] }]), false],
    ['a challenge certificate added', table([A]), { ...table([A]), acmeTlsChallenges: [B] }, false],
  ])('%s: keys equal %p', (_case, first, second, equal) => {
    expect(certificatesKey(first) === certificatesKey(second)).toBe(equal)
  })
})

describe('tableFor', () => {
  it('sends the certificates to a worker that does not hold them, and leaves them out otherwise', () => {
    const current = table([A, B])
    const key = certificatesKey(current)

    expect(tableFor(current, key, undefined)).toBe(current)
    expect(tableFor(current, key, 'an older key')).toBe(current)
    const light = tableFor(current, key, key)
    expect(light).toEqual({ version: 1, services: [], acmeThumbprint: 't' })
  })
})
