import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { FileStateStore, parseSnapshot } from '../src/primary/state/state-store'
import { StateFileError } from '../src/errors'
import { normalizeServiceSpec } from '../src/service-spec'

describe('parseSnapshot', () => {
  it.each([
    ['not JSON', '{"services": [', /cannot parse state file/],
    ['no services list', '{"version": 1}', /no "services" list/],
    ['a newer version', '{"version": 2, "services": []}', /version 2/],
    ['an invalid service', '{"version": 1, "services": [{"name": "x", "targets": ["nohost"]}]}', /service #1 is invalid/],
  ])('refuses %s with a message naming the file', (_case, text, message) => {
    expect(() => parseSnapshot(text, '/var/lib/mproxy/state.json')).toThrow(StateFileError)
    expect(() => parseSnapshot(text, '/var/lib/mproxy/state.json')).toThrow(message)
    expect(() => parseSnapshot(text, '/var/lib/mproxy/state.json')).toThrow('/var/lib/mproxy/state.json')
  })
})

describe('FileStateStore', () => {
  let dir: string
  beforeEach(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mproxy-state-')) })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('starts fresh without a file, then round-trips a snapshot with mode 0600', async () => {
    const store = new FileStateStore(dir)
    expect(await store.load()).toBeUndefined()
    const snapshot = { version: 1 as const, services: [normalizeServiceSpec({ targets: ['web-1:3000'], hosts: ['app.example.com'] })] }
    await store.save(snapshot)
    expect(await store.load()).toEqual(snapshot)
    const stat = await fs.stat(path.join(dir, 'state.json'))
    expect(stat.mode & 0o777).toBe(0o600)
    expect((await fs.readdir(dir)).filter((name) => name.includes('.tmp'))).toEqual([])
  })

  it('never overwrites a corrupt file it could not read', async () => {
    const file = path.join(dir, 'state.json')
    await fs.writeFile(file, 'garbage')
    await expect(new FileStateStore(dir).load()).rejects.toThrow(StateFileError)
    expect(await fs.readFile(file, 'utf8')).toBe('garbage')
  })
})
