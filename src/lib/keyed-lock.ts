/** Runs work for one key at a time, in call order; different keys do not wait for each other. */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<unknown>>()

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
