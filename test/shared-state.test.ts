import { HostInUseError, StateFileError } from '../src/errors'
import { FleetLock } from '../src/primary/fleet/fleet-lock'
import { recordSpec, startSharedState } from './helpers/shared-state'

describe('SharedState (real redis-server)', () => {
  it('gives each change the next revision and keeps a tombstone for a removal', async () => {
    const { shared } = await startSharedState()
    expect(await shared.commit('web', recordSpec('web', ['a.test']), 'n1')).toBe(2)
    expect(await shared.commit('web', undefined, 'n2')).toBe(3)
    const { head, records } = await shared.read()
    expect(head.revision).toBe(3)
    expect(records.get('web')).toEqual({ revision: 3, origin: 'n2', spec: undefined })
  })

  it('prunes the tombstones up to a revision, and nothing else', async () => {
    const { shared } = await startSharedState()
    await shared.commit('old', recordSpec('old', ['old.test']), 'n1')
    await shared.commit('old', undefined, 'n1')
    await shared.commit('kept', recordSpec('kept', ['kept.test']), 'n1')
    await shared.commit('recent', recordSpec('recent', ['recent.test']), 'n1')
    const removedAt = await shared.commit('recent', undefined, 'n1')

    expect(await shared.pruneTombstones(removedAt - 1)).toBe(1)
    expect([...(await shared.read()).records.keys()].sort()).toEqual(['kept', 'recent'])
    expect(await shared.pruneTombstones(removedAt)).toBe(1)
    expect([...(await shared.read()).records.keys()]).toEqual(['kept'])
  })

  it.each([
    ['a host of another service', ['a.test'], ['b.test', 'a.test'], 'host a.test is already used by service first'],
    ['no host, like another service', [], [], 'service first already answers for requests with no matching host'],
  ])('refuses %s atomically, and writes nothing', async (_case, firstHosts, secondHosts, message) => {
    const { shared } = await startSharedState()
    await shared.commit('first', recordSpec('first', firstHosts), 'n1')
    const refused = await shared.commit('second', recordSpec('second', secondHosts), 'n2').catch((err: Error) => err)
    expect(refused).toBeInstanceOf(HostInUseError)
    expect((refused as Error).message).toContain(message)
    expect((await shared.read()).records.has('second')).toBe(false)
  })

  it('lets a removed service\'s hosts be taken', async () => {
    const { shared } = await startSharedState()
    await shared.commit('first', recordSpec('first', ['a.test']), 'n1')
    await shared.commit('first', undefined, 'n1')
    await expect(shared.commit('second', recordSpec('second', ['a.test']), 'n2')).resolves.toBe(4)
  })

  it('seeds an empty Redis once; a commit against a Redis that lost its data is refused', async () => {
    const { shared, redis } = await startSharedState()
    expect(await shared.seed([recordSpec('web', [])], 'n2')).toBe(false)
    await redis.flushall()
    const refused = await shared.commit('web', recordSpec('web', []), 'n1').catch((err: Error) => err)
    expect(refused).toBeInstanceOf(StateFileError)
    expect((refused as Error).message).toContain('lost its data')
    expect(await shared.seed([recordSpec('web', [])], 'n1')).toBe(true)
    expect((await shared.read()).records.get('web')?.revision).toBe(1)
  })
})

describe('FleetLock (real redis-server)', () => {
  it('is held by one node at a time and released only by its owner', async () => {
    const { redis } = await startSharedState()
    const first = await FleetLock.tryAcquire(redis, 'test:lock:web', 'n1', 'web')
    expect(first).toBeInstanceOf(FleetLock)
    expect(await FleetLock.tryAcquire(redis, 'test:lock:web', 'n2', 'web')).toEqual({ holder: 'n1' })

    let told: (holder: string) => void = () => {}
    const waitingFor = new Promise<string>((resolve) => { told = resolve })
    const second = FleetLock.acquire(redis, 'test:lock:web', 'n2', 'web', 5_000, (holder) => told(holder))
    expect(await waitingFor).toBe('n1')
    await (first as FleetLock).release()
    const lock = await second
    // A release by a lock that no longer holds it changes nothing.
    await (first as FleetLock).release()
    expect(await FleetLock.tryAcquire(redis, 'test:lock:web', 'n3', 'web')).toEqual({ holder: 'n2' })
    await lock.release()
  })

  it('gives up after its wait, naming the holder', async () => {
    const { redis } = await startSharedState()
    const held = await FleetLock.tryAcquire(redis, 'test:lock:web', 'n1', 'web')
    await expect(FleetLock.acquire(redis, 'test:lock:web', 'n2', 'web', 300, () => {}))
      .rejects.toThrow('timed out after 300ms waiting for node n1 to finish its change of web')
    await (held as FleetLock).release()
  })
})
