/** Checking untrusted input against a valibot schema, with one readable line when it fails. */
import * as v from 'valibot'
import { InvalidOptionError, type MproxyError } from '../errors'

/**
 * The value, typed; or an error (InvalidOptionError unless `failure` says otherwise) naming
 * `what`, the first problem and where it is.
 */
export function parseWith<T>(
  schema: v.GenericSchema<unknown, T>, what: string, value: unknown, failure: new (message: string) => MproxyError = InvalidOptionError,
): T {
  const result = v.safeParse(schema, value)
  if (result.success) return result.output
  const issue = result.issues[0]
  const where = v.getDotPath(issue)
  throw new failure(`invalid ${what}${where ? ` (${where})` : ''}: ${issue.message}`)
}
