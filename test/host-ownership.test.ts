import { normalizeServiceSpec } from '../src/service-spec'
import { checkHostsAvailable, ownerOfAllHosts, resolveServiceName } from '../src/primary/deploys/host-ownership'

const spec = (name: string, hosts: string[]) => normalizeServiceSpec({ name, hosts, targets: ['web:3000'] })
const SERVICES = [spec('one', ['one.test', 'two.test']), spec('other', ['other.test']), spec('default', [])]

describe('checkHostsAvailable', () => {
  it.each<[string, ReturnType<typeof spec>, RegExp | undefined]>([
    ['a new host', spec('new', ['new.test']), undefined],
    ['its own hosts, on a redeploy', spec('one', ['two.test', 'one.test']), undefined],
    ["another service's host", spec('new', ['new.test', 'two.test']), /host two\.test is already used by service one/],
    ['a second default service', spec('new', []), /service default already answers for requests with no matching host/],
  ])('%s', (_case, candidate, error) => {
    if (error) expect(() => checkHostsAvailable(SERVICES, candidate)).toThrow(error)
    else expect(() => checkHostsAvailable(SERVICES, candidate)).not.toThrow()
  })
})

describe('ownerOfAllHosts', () => {
  it.each<[string, string[], string | undefined]>([
    ['all hosts of one service, in another order', ['two.test', 'one.test'], 'one'],
    ['some of its hosts, in another case', ['TWO.test'], 'one'],
    ['hosts of two services', ['one.test', 'other.test'], undefined],
    ['a new host among them', ['one.test', 'new.test'], undefined],
    ['no host', [], undefined],
  ])('%s', (_case, hosts, owner) => {
    expect(ownerOfAllHosts(SERVICES, hosts)).toBe(owner)
  })
})

describe('resolveServiceName', () => {
  it.each<[string, { name?: string; host?: string }, string | RegExp]>([
    ['by name', { name: 'other' }, 'other'],
    ['by host', { host: 'TWO.test' }, 'one'],
    ['the default service, by the empty host', { host: '' }, 'default'],
    ['an unknown host', { host: 'nobody.test' }, /no service answers for host nobody\.test/],
    ['neither', {}, /give a service name or --host/],
  ])('%s', (_case, request, expected) => {
    if (typeof expected === 'string') expect(resolveServiceName(SERVICES, request)).toBe(expected)
    else expect(() => resolveServiceName(SERVICES, request)).toThrow(expected)
  })
})
