/** drainTargets with a fake clock: long drain timeouts pass in no time. */
import { drainTargets, type InflightSource } from '../src/primary/deploys/drain'

jest.mock('../src/lib/logger', () => ({ ...jest.requireActual('../src/lib/logger'), log: jest.fn() }))

/** Workers whose in-flight counts the test sets; a cut zeroes them, as the workers would report. */
function workers(counts: Record<string, number>): InflightSource & { set(address: string, count: number): void; cuts: string[][] } {
  const listeners = new Set<() => void>()
  const cuts: string[][] = []
  const set = (address: string, count: number) => {
    counts[address] = count
    listeners.forEach((listener) => listener())
  }
  return {
    cuts,
    set,
    inflight: (address) => counts[address] ?? 0,
    onCounts: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    cut: (addresses) => {
      cuts.push(addresses)
      setTimeout(() => addresses.forEach((address) => set(address, 0)), 50)
    },
  }
}

describe('drainTargets', () => {
  beforeEach(() => jest.useFakeTimers())
  afterEach(() => jest.useRealTimers())

  it('resolves at once when nothing is in flight', async () => {
    const progress = jest.fn()
    await expect(drainTargets(workers({}), ['a:1'], 30_000, progress)).resolves.toEqual({ durationMs: 0, cut: 0 })
    expect(progress).not.toHaveBeenCalled()
  })

  it('resolves when the last request finishes, before the timeout, cutting nothing', async () => {
    const source = workers({ 'a:1': 2, 'b:1': 1 })
    const lines: string[] = []
    const draining = drainTargets(source, ['a:1', 'b:1'], 30_000, (line) => lines.push(line))
    await jest.advanceTimersByTimeAsync(12_000)
    source.set('a:1', 0)
    source.set('b:1', 0)
    await expect(draining).resolves.toEqual({ durationMs: 12_000, cut: 0 })
    expect(source.cuts).toEqual([])
    expect(lines[0]).toBe('draining a:1, b:1: 3 requests in flight')
  })

  it('repeats an unchanged count every 5 s so a long drain does not look stuck', async () => {
    const source = workers({ 'a:1': 1 })
    const lines: string[] = []
    const draining = drainTargets(source, ['a:1'], 30_000, (line) => lines.push(line))
    await jest.advanceTimersByTimeAsync(10_500)
    expect(lines).toEqual(Array(3).fill('draining a:1: 1 request in flight'))
    source.set('a:1', 0)
    await draining
  })

  it('cuts what remains at the timeout and counts it', async () => {
    const source = workers({ 'a:1': 4 })
    const lines: string[] = []
    const draining = drainTargets(source, ['a:1'], 600_000, (line) => lines.push(line))
    await jest.advanceTimersByTimeAsync(600_000)
    expect(source.cuts).toEqual([['a:1']])
    await jest.advanceTimersByTimeAsync(50)
    await expect(draining).resolves.toEqual({ durationMs: 600_050, cut: 4 })
    expect(lines.at(-1)).toBe('drain timeout (10m) passed: cutting 4 in flight on a:1')
  })
})
