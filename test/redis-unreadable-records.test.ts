/**
 * Records in Redis that do not pass their schema, read by each part that reads them (real
 * redis-server, in-process): each is logged once by its key and left where it is, and what
 * reads it goes on without it. The fleet as a whole: fleet-unreadable-records.test.ts.
 */
import fs from 'node:fs'
import { StateFileError } from '../src/errors'
import * as logger from '../src/lib/logger'
import { FleetLock } from '../src/primary/fleet/fleet-lock'
import { FleetNodes } from '../src/primary/fleet/fleet-nodes'
import { createRedisClient } from '../src/primary/fleet/redis-client'
import { SharedCertificates } from '../src/primary/fleet/shared-certificates'
import { RedisStateStore } from '../src/primary/state/redis-state-store'
import { FileStateStore } from '../src/primary/state/state-store'
import { CertificateFiles } from '../src/primary/tls/certificate-files'
import { makeStateDir, makeTestCertificate, onCleanup } from './helpers'
import { recordSpec, startSharedState } from './helpers/shared-state'

const DIRECTORY_URL = 'https://ca.test/directory'

/** The messages logged while `work` runs (and nothing written to stdout). */
async function logsOf(work: () => Promise<void>): Promise<Array<[level: string, msg: string, fields: Record<string, unknown>]>> {
  const logged = jest.spyOn(logger, 'log').mockImplementation(() => {})
  try {
    await work()
    return logged.mock.calls.map(([level, msg, fields]) => [level, msg, fields ?? {}])
  } finally {
    logged.mockRestore()
  }
}

describe('unreadable records in redis (real redis-server)', () => {
  it('leaves a bad service record out of a read, unapplied and undeleted, and holds up no other change', async () => {
    const { shared, redis } = await startSharedState()
    await shared.commit('gone', recordSpec('gone', ['gone.test']), 'n1')
    const removedAt = await shared.commit('gone', undefined, 'n1')
    await redis.hset('test:services', 'bad', '{"revision":')
    await redis.hset('test:services', 'misnamed', JSON.stringify({ revision: 1, origin: 'n1', spec: recordSpec('other', ['other.test']) }))

    const logs = await logsOf(async () => {
      const { records, unreadable } = await shared.read()
      expect([...records.keys()]).toEqual(['gone'])
      expect([...unreadable].sort()).toEqual(['bad', 'misnamed'])
      expect((await shared.readOne('bad')).record).toBeUndefined()
      // The scripts step over it: a commit checks hosts against the others, pruning keeps it.
      expect(await shared.commit('web', recordSpec('web', ['a.test']), 'n2')).toBe(removedAt + 1)
      expect(await shared.pruneTombstones(removedAt)).toBe(1)
    })

    expect(await redis.hkeys('test:services')).toEqual(expect.arrayContaining(['bad', 'misnamed', 'web']))
    expect(await redis.hget('test:services', 'bad')).toBe('{"revision":')
    // Read twice, logged once each (in the hash's order).
    expect(logs.sort(([, , a], [, , b]) => String(a.record).localeCompare(String(b.record)))).toEqual([
      ['error', 'unreadable service record in redis: not applied; deploy or remove the service to replace it', {
        record: 'test:services field bad', error: expect.stringMatching(/^invalid redis record test:services field bad: not JSON: /),
      }],
      ['error', 'unreadable service record in redis: not applied; deploy or remove the service to replace it', {
        record: 'test:services field misnamed', error: 'invalid redis record test:services field misnamed (spec.name): the service is named other',
      }],
    ])
  })

  it('refuses a revision counter that is not a number, naming its key; a node starting then serves its local copy', async () => {
    const { shared, redis } = await startSharedState()
    await redis.set('test:revision', 'seven')
    await expect(shared.head()).rejects.toThrow(new StateFileError('invalid redis record test:revision: expected a whole number'))

    const file = new FileStateStore(makeStateDir())
    await file.save({ version: 1, services: [recordSpec('web', ['a.test'])] })
    const connection = createRedisClient(`unix://${redis.options.path}`)
    const store = new RedisStateStore({ redis: connection, shared, file, node: 'n1', label: 'test', prefix: 'test:' })
    onCleanup(() => {
      store.close()
      connection.disconnect()
    })
    const logs = await logsOf(async () => {
      expect((await store.load())?.services.map((service) => service.name)).toEqual(['web'])
    })
    expect(logs).toContainEqual(['warn', 'redis state unreadable at start: serving the copy in the local file', expect.objectContaining({
      error: 'invalid redis record test:revision: expected a whole number',
    })])
  })

  it('waits for a live node whose record is unreadable, prunes nothing for it, and skips a bad report', async () => {
    const { redis } = await startSharedState()
    const nodes = new FleetNodes(redis, 'test:', 'n1', '1.0.0')
    nodes.startedWith = 4
    const pipeline = redis.pipeline()
    nodes.heartbeat(pipeline, 9)
    await pipeline.hset('test:nodes', 'n2', '{"pid":"12"}').set('test:alive:n2', 'box-2 12', 'PX', 5_000)
      .hset('test:applied:web', 'n1', JSON.stringify({ revision: 9, summary: 'switched', warning: false }))
      .hset('test:applied:web', 'n2', 'switched').exec()

    const logs = await logsOf(async () => {
      expect([...(await nodes.live())]).toEqual([['n1', 4], ['n2', 0]])
      expect(await nodes.oldestLiveRevision()).toBe(0)
      expect((await nodes.list()).map((node) => node.name)).toEqual(['n1'])
      expect([...(await nodes.appliedReports('web')).keys()]).toEqual(['n1'])
    })
    expect(logs.map(([level, msg, { record }]) => [level, msg, record])).toEqual([
      ['warn', 'unreadable node record in redis: ignored', 'test:nodes field n2'],
      ['warn', 'unreadable report in redis: taken as not reported yet', 'test:applied:web field n2'],
    ])
  })

  it('gives a lock without expiry, not taken by any node, the expiry of a node\'s', async () => {
    const { redis } = await startSharedState()
    await redis.set('test:lock:web', 'by-hand')
    const logs = await logsOf(async () => {
      expect(await FleetLock.tryAcquire(redis, 'test:lock:web', 'n1', 'web')).toEqual({ holder: 'by-hand' })
    })
    expect(await redis.pttl('test:lock:web')).toBeGreaterThan(0)
    expect(logs).toEqual([['warn', "fleet lock without expiry in redis: it expires like a node's", expect.objectContaining({ key: 'test:lock:web', holder: 'by-hand' })]])
  })

  it('serves and shares the local copy of a bad certificate, replaces a bad account, and ignores a bad failed order', async () => {
    const { redis } = await startSharedState()
    const files = new CertificateFiles(makeStateDir())
    await files.loadAll() // makes its directory
    const local = makeTestCertificate(['a.test'])
    await files.save('a.test', fs.readFileSync(local.certFile, 'utf8'), fs.readFileSync(local.keyFile, 'utf8'))
    await redis.multi()
      .hset('test:certificates', 'a.test', 'garbage')
      .hset('test:certificates', 'b.test', JSON.stringify({ cert: 'not a certificate', key: 'no key' }))
      .hset('test:acme-accounts', DIRECTORY_URL, JSON.stringify({ directoryUrl: DIRECTORY_URL }))
      .hset('test:acme-failures', 'a.test', JSON.stringify({ count: 'one', error: 'refused', nextAttemptAt: 0 }))
      .exec()
    const certificates = new SharedCertificates({ redis, subscriber: redis, files, node: 'n1', prefix: 'test:', channel: 'test:certificates' })

    const logs = await logsOf(async () => {
      expect((await certificates.loadAll()).map((certificate) => certificate.host)).toEqual(['a.test'])
      expect(await certificates.load('b.test')).toBeUndefined()
      expect(await certificates.loadFailure('a.test')).toBeUndefined()
      expect(await certificates.loadAccount(DIRECTORY_URL)).toBeUndefined()
      expect(await certificates.createAccount({ directoryUrl: DIRECTORY_URL, keyPem: 'KEY' })).toEqual({ directoryUrl: DIRECTORY_URL, keyPem: 'KEY' })
    })

    expect(JSON.parse((await redis.hget('test:certificates', 'a.test'))!)).toEqual({ cert: expect.stringContaining('BEGIN CERTIFICATE'), key: expect.any(String) })
    expect(await redis.hget('test:certificates', 'b.test')).toBe(JSON.stringify({ cert: 'not a certificate', key: 'no key' }))
    expect(JSON.parse((await redis.hget('test:acme-accounts', DIRECTORY_URL))!)).toEqual({ directoryUrl: DIRECTORY_URL, keyPem: 'KEY' })
    expect(logs.map(([level, msg, { record }]) => [level, msg, record]).sort()).toEqual([
      ['info', 'unreadable record in redis replaced', 'test:acme-accounts field https://ca.test/directory'],
      ['info', 'unreadable record in redis replaced', 'test:certificates field a.test'],
      ['warn', 'unreadable acme account in redis: replaced by this node\'s', 'test:acme-accounts field https://ca.test/directory'],
      ['warn', 'unreadable certificate in redis: taken as missing', 'test:certificates field a.test'],
      ['warn', 'unreadable certificate in redis: taken as missing', 'test:certificates field b.test'],
      ['warn', 'unreadable failed order in redis: ignored', 'test:acme-failures field a.test'],
    ])
  })
})
