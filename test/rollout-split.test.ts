import { fnv1a, inRollout, rolloutCookie } from '../src/worker/rollout-split'

describe('fnv1a', () => {
  it.each([
    ['', 0x811c9dc5],
    ['a', 0xe40c292c],
    ['foobar', 0xbf9cf968],
  ])('hashes %j', (value, expected) => {
    expect(fnv1a(value)).toBe(expected)
  })
})

describe('inRollout', () => {
  const values = Array.from({ length: 1000 }, (_, i) => String(i).padStart(5, '0'))

  it('sends about the given share of cookie values to the rollout, always the same ones', () => {
    const chosen = values.filter((value) => inRollout({ percent: 60, allowlist: [] }, value))
    expect(chosen.length).toBeGreaterThan(580)
    expect(chosen.length).toBeLessThan(620)
    expect(values.filter((value) => inRollout({ percent: 60, allowlist: [] }, value))).toEqual(chosen)
  })

  it('always sends listed values, and the others by percentage', () => {
    const split = { percent: 10, allowlist: ['00001', '00002'] }
    const chosen = values.filter((value) => inRollout(split, value))
    expect(chosen).toEqual(expect.arrayContaining(['00001', '00002']))
    expect(chosen.length).toBeGreaterThan(80)
    expect(chosen.length).toBeLessThan(120)
  })

  it.each([
    ['no cookie', { percent: 100, allowlist: [] }, undefined, false],
    ['0 percent', { percent: 0, allowlist: [] }, 'user-1', false],
    ['100 percent', { percent: 100, allowlist: [] }, 'user-1', true],
    ['listed at 0 percent', { percent: 0, allowlist: ['user-1'] }, 'user-1', true],
  ])('%s', (_case, split, value, expected) => {
    expect(inRollout(split, value)).toBe(expected)
  })
})

describe('rolloutCookie', () => {
  it.each([
    [undefined, undefined],
    ['kamal-rollout=abc', 'abc'],
    ['a=1; kamal-rollout=abc; b=2', 'abc'],
    ['a=1;kamal-rollout=abc', 'abc'],
    ['xkamal-rollout=abc', undefined],
    ['kamal-rollout-old=1; kamal-rollout=new', 'new'],
    ['session=1', undefined],
  ])('%j → %j', (header, expected) => {
    expect(rolloutCookie(header)).toBe(expected)
  })
})
