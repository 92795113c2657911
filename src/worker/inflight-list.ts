/**
 * The requests in flight on one target, as an intrusive doubly linked list: adding and removing
 * allocate nothing, and no long-lived Set or Map holds a reference to a request (one that did
 * kept whole request graphs alive through minor garbage collections).
 */
export interface Linked<T> {
  prev: T | undefined
  next: T | undefined
}

export class InflightList<T extends Linked<T>> {
  #head: T | undefined = undefined
  #size = 0

  get size(): number {
    return this.#size
  }

  add(item: T): void {
    item.prev = undefined
    item.next = this.#head
    if (this.#head) this.#head.prev = item
    this.#head = item
    this.#size++
  }

  /** Removes an item that is in this list; false (and nothing changes) when it is not. */
  remove(item: T): boolean {
    if (item.prev === undefined && this.#head !== item) return false
    if (item.prev) item.prev.next = item.next
    else this.#head = item.next
    if (item.next) item.next.prev = item.prev
    item.prev = undefined
    item.next = undefined
    this.#size--
    return true
  }

  /** Calls `fn` for each item; `fn` may remove the item it is given. */
  forEach(fn: (item: T) => void): void {
    let item = this.#head
    while (item) {
      const next = item.next
      fn(item)
      item = next
    }
  }
}
