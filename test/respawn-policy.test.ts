/**
 * RespawnPolicy over a fake clock. The tables spell out the policy's numbers: a first delay of
 * 100 ms that doubles up to 5 s, and a crash loop at more than 5 unexpected exits within 30 s.
 */
import { RespawnPolicy } from '../src/primary/workers/respawn-policy'

/** A worker exits unexpectedly at this time (ms), or a worker starts listening. */
type Step = { crashAt: number } | 'started'
/** What the policy answers each crash: respawn after this many ms, or give up. */
type Answer = number | 'give-up'

const crashesAt = (...times: number[]): Step[] => times.map((crashAt) => ({ crashAt }))

function answers(steps: Step[]): Answer[] {
  const policy = new RespawnPolicy()
  const result: Answer[] = []
  for (const step of steps) {
    if (step === 'started') {
      policy.started()
      continue
    }
    jest.setSystemTime(step.crashAt)
    const decision = policy.crashed()
    result.push(decision.action === 'respawn' ? decision.delayMs : 'give-up')
  }
  return result
}

beforeEach(() => {
  jest.useFakeTimers({ now: 0 })
})

afterEach(() => {
  jest.useRealTimers()
})

describe('RespawnPolicy', () => {
  it.each<[string, Step[], Answer[]]>([
    ['replaces the first crashed worker after the shortest delay', crashesAt(0), [100]],
    ['doubles the delay while workers keep crashing', crashesAt(0, 10_000, 20_000), [100, 200, 400]],
    ['caps the delay', crashesAt(0, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000),
      [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000]],
    ['goes back to the shortest delay once a worker starts', [...crashesAt(0, 10_000), 'started', ...crashesAt(20_000)], [100, 200, 100]],
    ['gives up at the sixth crash within the window', crashesAt(0, 1_000, 2_000, 3_000, 4_000, 5_000),
      [100, 200, 400, 800, 1_600, 'give-up']],
    ['still counts a crash just inside the window', crashesAt(0, 1_000, 2_000, 3_000, 4_000, 29_999),
      [100, 200, 400, 800, 1_600, 'give-up']],
    ['no longer counts crashes that left the window', crashesAt(0, 1_000, 2_000, 3_000, 4_000, 30_000),
      [100, 200, 400, 800, 1_600, 3_200]],
    ['does not forget the crashes in the window when a worker starts', [...crashesAt(0, 1_000, 2_000, 3_000, 4_000), 'started', ...crashesAt(5_000)],
      [100, 200, 400, 800, 1_600, 'give-up']],
  ])('%s', (_case, steps, expected) => {
    expect(answers(steps)).toEqual(expected)
  })

  it('says how many crashes within how long made it give up', () => {
    const policy = new RespawnPolicy()
    for (let i = 0; i < 5; i++) policy.crashed()

    expect(policy.crashed()).toEqual({ action: 'give-up', reason: 'workers crashed 6 times within 30s; giving up' })
  })
})
