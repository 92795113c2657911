/** Checking untrusted input against a valibot schema, with one readable line when it fails. */
import * as v from 'valibot'
import { InvalidOptionError } from '../errors'

/** The value, typed; or an InvalidOptionError naming `what`, the first problem and where it is. */
export function parseWith<T>(schema: v.GenericSchema<unknown, T>, what: string, value: unknown): T {
  const result = v.safeParse(schema, value)
  if (result.success) return result.output
  const issue = result.issues[0]
  const where = v.getDotPath(issue)
  throw new InvalidOptionError(`invalid ${what}${where ? ` (${where})` : ''}: ${issue.message}`)
}
