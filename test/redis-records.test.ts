import type * as v from 'valibot'
import { StateFileError } from '../src/errors'
import * as logger from '../src/lib/logger'
import {
  ACME_ACCOUNT, APPLIED_REPORT, CERTIFICATE_RECORD, NODE_RECORD, ORDER_FAILURE, REVISION_COUNTER, SERVICE_RECORD, UnreadableRecords, parseRecord, recordName,
} from '../src/primary/fleet/redis-records'
import { parseWith } from '../src/lib/schema'

const NODE = { pid: 4242, hostname: 'box-1', version: '1.2.0', heartbeatAt: 1_700_000_000_000, revision: 7, startedWith: 3 }
const REPORT = { revision: 7, summary: 'switched and drained after 1.2s', warning: false }
const SPEC = { name: 'web', hosts: ['app.test'], targets: ['127.0.0.1:3000'], healthCheck: {} }
const DEPLOYED = { revision: 5, origin: 'n1', spec: SPEC }
const REMOVED = { revision: 6, origin: 'n2', removed: true }
const CERTIFICATE = { cert: '-----BEGIN CERTIFICATE-----', key: '-----BEGIN PRIVATE KEY-----' }
const ACCOUNT = { directoryUrl: 'https://ca.test/directory', keyPem: '-----BEGIN RSA PRIVATE KEY-----' }
const FAILURE = { count: 2, error: 'connection refused', nextAttemptAt: 1_700_000_060_000 }

const WHERE = recordName('mproxy:records', 'field-1')

type Row = [kind: string, schema: v.GenericSchema<unknown, unknown>, record: unknown]

describe('Redis record schemas', () => {
  it.each<Row>([
    ['a node record', NODE_RECORD, NODE],
    ['a node record from before revisions were kept', NODE_RECORD, { ...NODE, revision: undefined, startedWith: undefined }],
    ['a node record with a field of a later version', NODE_RECORD, { ...NODE, zone: 'eu-1' }],
    ['an applied report', APPLIED_REPORT, REPORT],
    ['a deployed service', SERVICE_RECORD, DEPLOYED],
    ['a removed service (tombstone)', SERVICE_RECORD, REMOVED],
    ['a certificate', CERTIFICATE_RECORD, CERTIFICATE],
    ['an ACME account, registered or not', ACME_ACCOUNT, { ...ACCOUNT, url: 'https://ca.test/acct/1' }],
    ['a failed order', ORDER_FAILURE, FAILURE],
  ])('reads %s', (_kind, schema, record) => {
    expect(() => parseRecord(schema, WHERE, JSON.stringify(record))).not.toThrow()
  })

  it('fills in what an old node record leaves out, and normalizes the spec of a service record', () => {
    expect(parseRecord(NODE_RECORD, WHERE, JSON.stringify({ ...NODE, revision: undefined, startedWith: undefined }))).toMatchObject({ revision: 0, startedWith: 0 })
    const record = parseRecord(SERVICE_RECORD, WHERE, JSON.stringify(DEPLOYED))
    expect(record.spec).toMatchObject({ name: 'web', healthCheck: { path: '/up' }, drainTimeoutMs: 30_000 })
    expect(parseRecord(SERVICE_RECORD, WHERE, JSON.stringify(REMOVED))).toEqual({ revision: 6, origin: 'n2', spec: undefined })
  })

  it.each<[kind: string, schema: v.GenericSchema<unknown, unknown>, text: string, problem: string]>([
    ['a record that is not JSON', NODE_RECORD, 'pid=4242', ': not JSON: '],
    ['a record cut short', APPLIED_REPORT, JSON.stringify(REPORT).slice(0, 20), ': not JSON: '],
    ['a record that is not an object', NODE_RECORD, '4242', ': Invalid type: Expected Object'],
    ['JSON null', CERTIFICATE_RECORD, 'null', ': Invalid type: Expected Object'],
    ['a node record without its pid', NODE_RECORD, JSON.stringify({ ...NODE, pid: undefined }), ' (pid): '],
    ['a node record with a heartbeat as text', NODE_RECORD, JSON.stringify({ ...NODE, heartbeatAt: 'now' }), ' (heartbeatAt): '],
    ['a node record with a negative revision', NODE_RECORD, JSON.stringify({ ...NODE, revision: -1 }), ' (revision): '],
    ['a report whose revision is a string', APPLIED_REPORT, JSON.stringify({ ...REPORT, revision: '7' }), ' (revision): '],
    ['a report without its summary', APPLIED_REPORT, JSON.stringify({ ...REPORT, summary: undefined }), ' (summary): '],
    ['a report whose warning is not a boolean', APPLIED_REPORT, JSON.stringify({ ...REPORT, warning: 'yes' }), ' (warning): '],
    ['a service record without a revision', SERVICE_RECORD, JSON.stringify({ ...DEPLOYED, revision: undefined }), ' (revision): '],
    ['a service record with revision 0', SERVICE_RECORD, JSON.stringify({ ...DEPLOYED, revision: 0 }), ' (revision): '],
    ['a service record with a fractional revision', SERVICE_RECORD, JSON.stringify({ ...DEPLOYED, revision: 1.5 }), ' (revision): '],
    ['a service record with neither spec nor removal', SERVICE_RECORD, JSON.stringify({ revision: 5, origin: 'n1' }), ': expected either "spec" or "removed": true'],
    ['a service record with both spec and removal', SERVICE_RECORD, JSON.stringify({ ...DEPLOYED, removed: true }), ': expected either "spec" or "removed": true'],
    ['a service record whose spec has no targets', SERVICE_RECORD, JSON.stringify({ ...DEPLOYED, spec: { ...SPEC, targets: [] } }), ' (spec): at least one target'],
    ['a service record whose spec has a bad target', SERVICE_RECORD, JSON.stringify({ ...DEPLOYED, spec: { ...SPEC, targets: ['not a target'] } }), ' (spec): '],
    ['a service record whose spec is a string', SERVICE_RECORD, JSON.stringify({ ...DEPLOYED, spec: 'web' }), ' (spec): invalid service: '],
    ['a certificate without its key', CERTIFICATE_RECORD, JSON.stringify({ cert: CERTIFICATE.cert }), ' (key): '],
    ['an account without its key', ACME_ACCOUNT, JSON.stringify({ directoryUrl: ACCOUNT.directoryUrl }), ' (keyPem): '],
    ['a failed order counted 0 times', ORDER_FAILURE, JSON.stringify({ ...FAILURE, count: 0 }), ' (count): '],
    ['a failed order whose next attempt is text', ORDER_FAILURE, JSON.stringify({ ...FAILURE, nextAttemptAt: 'soon' }), ' (nextAttemptAt): '],
  ])('refuses %s with one line naming the record', (_kind, schema, text, problem) => {
    let error: unknown
    try {
      parseRecord(schema, WHERE, text)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(StateFileError)
    const message = (error as Error).message
    expect(message.startsWith('invalid redis record mproxy:records field field-1')).toBe(true)
    expect(message).toContain(problem)
    expect(message).not.toContain('\n')
  })

  it.each<[string, string | null, number | undefined]>([
    ['no counter yet', null, 0],
    ['a counter', '42', 42],
    ['a counter that is not a number', 'forty-two', undefined],
    ['a negative counter', '-1', undefined],
    ['an empty counter', '', undefined],
  ])('reads the revision counter: %s', (_case, text, revision) => {
    const read = () => parseWith(REVISION_COUNTER, 'redis record mproxy:revision', text, StateFileError)
    if (revision === undefined) expect(read).toThrow(/^invalid redis record mproxy:revision: expected a whole number$/)
    else expect(read()).toBe(revision)
  })
})

describe('UnreadableRecords', () => {
  it('logs a bad record once for as long as it stays the same, and again once it changes', () => {
    const logged = jest.spyOn(logger, 'log').mockImplementation(() => {})
    try {
      const reports = new UnreadableRecords('unreadable report in redis: taken as not reported yet')
      const where = recordName('mproxy:applied:web', 'n2')
      for (let poll = 0; poll < 3; poll++) expect(reports.read(APPLIED_REPORT, where, '{"revision":')).toBeUndefined()
      expect(reports.read(APPLIED_REPORT, where, '{"revision":"7"}')).toBeUndefined()
      expect(reports.read(APPLIED_REPORT, where, JSON.stringify(REPORT))).toEqual(REPORT)
      expect(reports.read(APPLIED_REPORT, where, '{"revision":')).toBeUndefined()

      expect(logged).toHaveBeenCalledTimes(3)
      expect(logged).toHaveBeenNthCalledWith(1, 'warn', 'unreadable report in redis: taken as not reported yet', {
        record: 'mproxy:applied:web field n2', error: expect.stringMatching(/^invalid redis record mproxy:applied:web field n2: not JSON: /),
      })
      expect(logged.mock.calls[1][2]).toMatchObject({ error: expect.stringMatching(/^invalid redis record mproxy:applied:web field n2 \(revision\): /) })
    } finally {
      logged.mockRestore()
    }
  })
})
