import { EventLoopDelay } from '../src/primary/event-loop-delay'

/** Long next to the resolution, so the block stands out of the samples. */
const BLOCK_MS = 50
const RESOLUTION_MS = 2

describe('EventLoopDelay', () => {
  it('reports nothing before its first sample', () => {
    const delay = new EventLoopDelay(RESOLUTION_MS)

    expect(delay.status()).toEqual({ p50Ms: 0, p99Ms: 0, maxMs: 0 })
  })

  it('reports a loop held by synchronous work as at least that late, in milliseconds', async () => {
    const delay = new EventLoopDelay(RESOLUTION_MS)
    await sleep(10 * RESOLUTION_MS)

    const started = Date.now()
    while (Date.now() - started < BLOCK_MS) {
      // Holds the loop, as a long synchronous step in the primary would.
    }
    await sleep(10 * RESOLUTION_MS)

    // A lower bound only: a busy machine can only make the loop later.
    // Half the block as the bound: the sampling timer may have fired partway into it.
    expect(delay.status().maxMs).toBeGreaterThanOrEqual(BLOCK_MS / 2)
  })
})

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
