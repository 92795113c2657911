/**
 * A reload whose new workers cannot start (a broken build on disk) must not take the proxy down:
 * it stops at the first failure, every old worker keeps serving, and `mproxy reload` says why.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { REPO_ROOT, errorLines, onCleanup, runLoad, startBackend, startProxy, expectAllServedBy } from './helpers'

const LOAD_CONCURRENCY = 8

/** A copy of the build that a test may break: dist, bin and package.json, with node_modules linked. */
function copyBuild(): { bin: string; workerMain: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mproxy-build-'))
  onCleanup(() => fs.rmSync(root, { recursive: true, force: true }))
  fs.cpSync(path.join(REPO_ROOT, 'dist'), path.join(root, 'dist'), { recursive: true })
  fs.cpSync(path.join(REPO_ROOT, 'bin'), path.join(root, 'bin'), { recursive: true })
  fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(root, 'package.json'))
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'))
  return { bin: path.join(root, 'bin', 'run.js'), workerMain: path.join(root, 'dist', 'worker', 'main.js') }
}

describe('reload with a broken build', () => {
  it('stops at the first worker that cannot start, keeps the old workers serving under load, and exits 1 saying why', async () => {
    const build = copyBuild()
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 2, bin: build.bin })
    await proxy.deploy([backend.address])
    const pidsBefore = (await proxy.status()).workerPids
    const good = fs.readFileSync(build.workerMain, 'utf8')
    fs.writeFileSync(build.workerMain, `${good}\nthis is not javascript (\n`)

    const load = runLoad(proxy.port, { concurrency: LOAD_CONCURRENCY })
    const reloads = []
    for (let i = 0; i < 3; i++) reloads.push(await proxy.cli(['reload']))
    const result = await load.stop()

    for (const reload of reloads) {
      expect(reload.code).toBe(1)
      const lines = errorLines(reload.stderr)
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/reload stopped: a new worker could not start: SyntaxError/)
      expect(lines[0]).toMatch(/0 of 2 workers replaced/)
    }
    expectAllServedBy(result, [backend])
    expect((await proxy.status()).workerPids).toEqual(pidsBefore)
    expect(proxy.logs.some((line) => line.msg === 'giving up')).toBe(false)

    // Fixed on disk: the next reload replaces every worker.
    fs.writeFileSync(build.workerMain, good)
    const fixed = await proxy.cli(['reload'])
    expect(fixed.code).toBe(0)
    const pidsAfter = (await proxy.status()).workerPids
    expect(pidsAfter).toHaveLength(2)
    expect(pidsAfter.some((pid) => pidsBefore.includes(pid))).toBe(false)
  })
})
