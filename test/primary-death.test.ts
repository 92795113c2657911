/**
 * When the primary dies without a word (SIGKILL, OOM killer), its workers are orphans: nobody
 * routes or supervises them any more. They finish what is in flight and exit on their own, so
 * neither a request nor a process is left behind.
 */
import * as fs from 'node:fs'
import { onCleanup, request, startBackend, startProxy, timed, waitUntil, type Response } from './helpers'

/** The app takes this long to answer the request in flight when the primary dies. */
const SLOW_REQUEST_MS = 2_000
/** How long the orphaned workers may take to exit (the brief: within the shutdown timeout). */
const WORKER_EXIT_BOUND_MS = 15_000

/** Whether `pid` is a live process; a zombie nobody reaps counts as gone. */
function isAlive(pid: number): boolean {
  let stat: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return false
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2)[0]
  return state !== 'Z' && state !== 'X'
}

describe('primary death', () => {
  it('lets the request in flight finish, then the workers exit', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address])
    const { workerPids } = await proxy.status()
    expect(workerPids).toHaveLength(1)
    onCleanup(() => {
      for (const pid of workerPids.filter(isAlive)) process.kill(pid, 'SIGKILL')
    })
    const slow = timed(request(proxy.port, { path: `/slow?ms=${SLOW_REQUEST_MS}` }))
    await waitUntil(() => backend.appRequests >= 1, undefined, 'the slow request to reach the app')

    proxy.proc.kill('SIGKILL')
    await proxy.exited
    const result = await slow

    expect(result.error).toBeUndefined()
    expect(result.value).toMatchObject<Partial<Response>>({ status: 200, body: backend.name })
    await waitUntil(() => !workerPids.some(isAlive), WORKER_EXIT_BOUND_MS, `the workers (${workerPids.join(', ')}) to exit`)
  })
})
