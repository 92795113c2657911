/** Test helpers: Waiting */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { SHORT_TIMEOUT_MS } from './timing'
import { onCleanup } from './cleanup'

/**
 * Calls `fn` until it returns a truthy value (or resolves to one) and returns that value.
 * Thrown errors count as "not yet". Polls with backoff from 10 ms up to 200 ms.
 */
export async function waitUntil<T>(
  fn: () => T | Promise<T>,
  timeoutMs = SHORT_TIMEOUT_MS,
  description = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let delay = 10
  let lastError: unknown
  for (;;) {
    try {
      const value = await fn()
      if (value) return value as NonNullable<T>
    } catch (err) {
      lastError = err
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${reason}`)
    }
    await delayMs(Math.min(delay, Math.max(0, deadline - Date.now())))
    delay = Math.min(delay * 2, 200)
  }
}

export interface Timed<T> {
  value?: T
  error?: Error
  at: number
}

/** Runs `promise` and records when it settled, without letting a rejection escape. */
export function timed<T>(promise: Promise<T>): Promise<Timed<T>> {
  return promise.then(
    (value) => ({ value, at: Date.now() }),
    (error: Error) => ({ error, at: Date.now() }),
  )
}

export function delayMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export function makeStateDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mproxy-test-'))
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}
