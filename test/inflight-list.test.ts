import { InflightList, type Linked } from '../src/worker/inflight-list'

class Item implements Linked<Item> {
  prev: Item | undefined = undefined
  next: Item | undefined = undefined
  constructor(readonly name: string) {}
}

function names(list: InflightList<Item>): string[] {
  const out: string[] = []
  list.forEach((item) => out.push(item.name))
  return out
}

describe('InflightList', () => {
  it.each<[string, string[], string[], string[]]>([
    ['removes the newest', ['a', 'b', 'c'], ['c'], ['b', 'a']],
    ['removes the oldest', ['a', 'b', 'c'], ['a'], ['c', 'b']],
    ['removes one in the middle', ['a', 'b', 'c'], ['b'], ['c', 'a']],
    ['removes all', ['a', 'b'], ['a', 'b'], []],
  ])('%s', (_case, added, removed, left) => {
    const list = new InflightList<Item>()
    const items = new Map(added.map((name) => [name, new Item(name)]))
    for (const item of items.values()) list.add(item)
    for (const name of removed) expect(list.remove(items.get(name)!)).toBe(true)
    expect(names(list)).toEqual(left)
    expect(list.size).toBe(left.length)
  })

  it('ignores an item that is not in the list, or was removed already', () => {
    const list = new InflightList<Item>()
    const [a, stranger] = [new Item('a'), new Item('stranger')]
    list.add(a)
    expect(list.remove(stranger)).toBe(false)
    expect(list.remove(a)).toBe(true)
    expect(list.remove(a)).toBe(false)
    expect(list.size).toBe(0)
  })

  it('lets forEach remove the item it is given', () => {
    const list = new InflightList<Item>()
    for (const name of ['a', 'b', 'c']) list.add(new Item(name))
    list.forEach((item) => list.remove(item))
    expect(list.size).toBe(0)
  })
})
