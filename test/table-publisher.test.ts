import type { RouteTable } from '../src/ipc/messages'
import { TablePublisher } from '../src/primary/workers/table-publisher'

describe('TablePublisher', () => {
  it('sends one table at a time, and coalesces the changes made meanwhile into the latest', async () => {
    let state = 0
    const sent: number[] = []
    let release: () => void = () => {}
    const send = (table: RouteTable) => {
      sent.push(table.version)
      return new Promise<void>((resolve) => { release = resolve })
    }
    const publisher = new TablePublisher(send, () => ({ version: state, services: [], acmeThumbprint: '' }))

    state = 1
    const first = publisher.publish()
    await Promise.resolve()
    state = 2
    const second = publisher.publish()
    state = 3
    const third = publisher.publish()
    expect(third).toBe(second)
    expect(sent).toEqual([1])

    release()
    await first
    await new Promise((resolve) => setImmediate(resolve))
    expect(sent).toEqual([1, 3])
    release()
    await second
  })

  it('goes on after a send that failed', async () => {
    let fail = true
    const sent: number[] = []
    const publisher = new TablePublisher(async (table) => {
      sent.push(table.version)
      if (fail) throw new Error('worker gone')
    }, () => ({ version: sent.length + 1, services: [], acmeThumbprint: '' }))
    await expect(publisher.publish()).rejects.toThrow('worker gone')
    fail = false
    await expect(publisher.publish()).resolves.toBeUndefined()
    expect(sent).toEqual([1, 2])
  })
})
