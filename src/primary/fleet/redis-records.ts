/**
 * One schema per kind of record a node reads back from Redis. What is there may have been
 * written by another version of mproxy, typed in by hand with redis-cli, or cut short, so nothing
 * read is used before it passes its schema. `parseRecord` fails with one line naming the key (and
 * the hash field) and the first problem; each reader decides, and says in a comment, what a bad
 * record means there. A bad record must never stop the primary or hold up the fleet.
 */
import * as v from 'valibot'
import { StateFileError, oneLine } from '../../errors'
import { log, type LogLevel } from '../../lib/logger'
import { parseWith } from '../../lib/schema'
import { type ServiceSpec } from '../../options'
import { normalizeServiceSpec } from '../../service-spec'
import type { AcmeAccount, OrderFailure } from '../tls/certificate-files'
import type { SharedRecord } from '../state/shared-state'
import type { AppliedReport, NodeRecord } from './fleet-nodes'

const revision = v.pipe(v.number(), v.integer(), v.minValue(0))
const epochMs = v.pipe(v.number(), v.finite(), v.minValue(0))

/** `<prefix>nodes`, one field per node: what the node wrote about itself at its last heartbeat. */
export const NODE_RECORD = v.object({
  pid: v.pipe(v.number(), v.integer(), v.minValue(1)),
  hostname: v.string(),
  version: v.string(),
  heartbeatAt: epochMs,
  // Read as 0 when missing, as before these records were checked.
  revision: v.optional(revision, 0),
  startedWith: v.optional(revision, 0),
}) satisfies v.GenericSchema<unknown, NodeRecord>

/** `<prefix>alive:<node>`: `<hostname> <pid>` of the process that heartbeats under the name. */
export const ALIVE_CLAIM = v.pipe(v.string(), v.regex(/^\S+ \d+$/, 'expected "<hostname> <pid>"'))

/** `<prefix>applied:<service>`, one field per node: how the node applied the service's last change. */
export const APPLIED_REPORT = v.object({
  revision,
  summary: v.string(),
  warning: v.boolean(),
}) satisfies v.GenericSchema<unknown, AppliedReport>

/** A service definition, checked and normalized by the same rules as a deploy request's. */
const serviceSpec = v.pipe(v.unknown(), v.rawTransform<unknown, ServiceSpec>(({ dataset, addIssue, NEVER }) => {
  try {
    return normalizeServiceSpec(dataset.value)
  } catch (err) {
    addIssue({ message: oneLine(err) })
    return NEVER
  }
}))

/** `<prefix>services`, one field per service: its last change, a deploy (`spec`) or a removal (`removed`). */
export const SERVICE_RECORD = v.pipe(
  v.object({
    revision: v.pipe(revision, v.minValue(1)),
    origin: v.string(),
    spec: v.optional(serviceSpec),
    removed: v.optional(v.literal(true)),
  }),
  v.check((record) => (record.spec === undefined) === (record.removed === true), 'expected either "spec" or "removed": true'),
  v.transform(({ revision, origin, spec }): SharedRecord => ({ revision, origin, spec })),
) satisfies v.GenericSchema<unknown, SharedRecord>

/** `<prefix>revision`: the counter every change raises (with INCR); missing before the first state. */
export const REVISION_COUNTER = v.pipe(
  v.nullable(v.pipe(v.string(), v.regex(/^\d+$/, 'expected a whole number'))),
  v.transform((text) => Number(text ?? 0)),
)

/** `<prefix>certificates`, one field per host: the certificate chain and its key, in PEM. */
export const CERTIFICATE_RECORD = v.object({ cert: v.string(), key: v.string() })

/** `<prefix>acme-accounts`, one field per directory URL. */
export const ACME_ACCOUNT = v.object({
  directoryUrl: v.string(),
  keyPem: v.string(),
  url: v.optional(v.string()),
}) satisfies v.GenericSchema<unknown, AcmeAccount>

/** `<prefix>acme-failures`, one field per host: its last failed orders. */
export const ORDER_FAILURE = v.object({
  count: v.pipe(v.number(), v.integer(), v.minValue(1)),
  error: v.string(),
  nextAttemptAt: epochMs,
}) satisfies v.GenericSchema<unknown, OrderFailure>

/** How messages name a record: its key, and its field for a hash. */
export function recordName(key: string, field?: string): string {
  return field === undefined ? key : `${key} field ${field}`
}

/** The JSON record named `where` (see recordName), checked by `schema`; or a StateFileError of one line. */
export function parseRecord<T>(schema: v.GenericSchema<unknown, T>, where: string, text: string): T {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new StateFileError(`invalid redis record ${where}: not JSON: ${oneLine(err)}`)
  }
  return parseWith(schema, `redis record ${where}`, data, StateFileError)
}

/**
 * Reports records a reader goes on without, each once: a wait that reads the same bad record ten
 * times a second logs it once, and again only if it changes, or is repaired and goes bad again.
 */
export class UnreadableRecords {
  readonly #message: string
  readonly #level: LogLevel
  /** Record name → the bad text last logged. */
  readonly #logged = new Map<string, string>()

  /** `message` says what the reader does instead, e.g. "unreadable node record in redis: ignored". */
  constructor(message: string, level: LogLevel = 'warn') {
    this.#message = message
    this.#level = level
  }

  /** The record, or undefined when it does not pass `schema` (logged). */
  read<T>(schema: v.GenericSchema<unknown, T>, where: string, text: string): T | undefined {
    return this.readAs(schema, where, text, (record) => record)
  }

  /**
   * The record made into what the reader needs by `use`, or undefined when it does not pass
   * `schema` or `use` throws (logged): `use` checks what a schema cannot, such as a PEM that parses.
   */
  readAs<T, U>(schema: v.GenericSchema<unknown, T>, where: string, text: string, use: (record: T) => U): U | undefined {
    try {
      const value = use(parseRecord(schema, where, text))
      this.#logged.delete(where)
      return value
    } catch (err) {
      if (this.#logged.get(where) !== text) log(this.#level, this.#message, { record: where, error: oneLine(err) })
      this.#logged.set(where, text)
      return undefined
    }
  }
}
