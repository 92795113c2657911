/** Test helpers: Cleanup registry */
import { ChildProcess } from 'node:child_process'

export type Closer = () => Promise<unknown> | unknown

export const testScoped: Closer[] = []
export const fileScoped: Closer[] = []
export const children = new Set<ChildProcess>()

/**
 * True from the root beforeEach to the root afterEach of a test, false in beforeAll/afterAll.
 * (jest's `expect.getState().currentTestName` is not reset between tests, so it cannot tell.)
 */
export let inTest = false

export function insideTest(): boolean {
  return inTest
}

/** Registers `closer` to run after the current test (or after the file, from `beforeAll`). */
export function onCleanup(closer: Closer): void {
  ;(insideTest() ? testScoped : fileScoped).push(closer)
}

export async function runClosers(list: Closer[]): Promise<void> {
  const errors: unknown[] = []
  // Last created, first closed: a proxy goes before the backends it points at.
  for (const closer of list.splice(0).reverse()) {
    try {
      await closer()
    } catch (err) {
      errors.push(err)
    }
  }
  if (errors.length) throw errors[0]
}

beforeEach(() => {
  inTest = true
})
afterEach(async () => {
  try {
    await runClosers(testScoped)
  } finally {
    inTest = false
  }
})
afterAll(async () => {
  await runClosers(fileScoped)
  for (const child of children) killHard(child)
})
process.on('exit', () => {
  for (const child of children) killHard(child)
})

export function killHard(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) {
    try {
      child.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
}

export function track(child: ChildProcess): void {
  children.add(child)
  child.once('exit', () => children.delete(child))
}
