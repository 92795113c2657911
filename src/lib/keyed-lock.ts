/** Runs work one at a time per key; different keys run independently. */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<unknown>>()

  /** Runs `work` once every earlier work of `key` has settled; settles as `work` does. */
  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve()
    const run = previous.catch(() => {}).then(work)
    const settled = run.catch(() => {})
    this.#tails.set(key, settled)
    try {
      return await run
    } finally {
      if (this.#tails.get(key) === settled) this.#tails.delete(key)
    }
  }
}
