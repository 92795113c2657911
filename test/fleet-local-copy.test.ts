/**
 * With Redis, Redis's commit is the decision: a node whose local copy of the state cannot be
 * written serves the change like every other node, says so, and writes the copy once it can.
 */
import fs from 'node:fs'
import path from 'node:path'
import { getBody, startBackend, startProxy, startRedis, waitUntil } from './helpers'

/** The copy is retried every 5 s: this bounds the wait for it on a busy machine. */
const COPY_RETRY_BOUND_MS = 15_000

describe('a node whose local state copy cannot be written', () => {
  it('keeps the change Redis committed, like the rest of the fleet, and writes the copy once it can', async () => {
    const redis = await startRedis()
    const [a, b] = [await startBackend(), await startBackend()]
    const n1 = await startProxy({ workers: 1, args: ['--redis-url', redis.url, '--node-name', 'n1'] })
    const n2 = await startProxy({ workers: 1, args: ['--redis-url', redis.url, '--node-name', 'n2'] })
    await n1.deploy([a.address], ['--host', 'app.test'])
    // state.json replaced by a directory: the atomic rename onto it fails, whatever the user.
    const file = path.join(n1.stateDir, 'state.json')
    fs.rmSync(file)
    fs.mkdirSync(file)
    fs.writeFileSync(path.join(file, 'keep'), '')

    const result = await n1.deploy([b.address], ['--host', 'app.test'])

    expect(result.code).toBe(0)
    for (const node of [n1, n2]) expect(await getBody(node.port, { host: 'app.test' })).toBe(b.name)
    expect(n1.logs.some((line) => line.msg === 'state saved in redis, but its local copy could not be written; retrying')).toBe(true)

    fs.rmSync(file, { recursive: true })
    await waitUntil(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes(b.address), COPY_RETRY_BOUND_MS, 'the local copy')
  })
})
