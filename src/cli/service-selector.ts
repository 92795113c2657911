/** The argument and flags of commands that act on one service (remove, pause, stop, resume). */
import { Args, Flags } from '@oclif/core'
import type { ServiceSelector } from '../control/protocol'
import { InvalidOptionError } from '../errors'

export const SERVICE_ARGS = {
  name: Args.string({ description: 'Service name (see mproxy list)' }),
}

export const SERVICE_FLAGS = {
  host: Flags.string({ description: 'Act on the service that answers for this host instead of naming it', helpValue: 'HOST' }),
  quiet: Flags.boolean({ char: 'q', description: 'Print nothing but errors [default: false]' }),
}

/** The service named by the argument or by `--host`: one of the two, not both. */
export function selectService(name: string | undefined, host: string | undefined): ServiceSelector {
  if (!name && host === undefined) throw new InvalidOptionError('give a service name or --host HOST')
  if (name && host !== undefined) throw new InvalidOptionError('give either a service name or --host, not both')
  return { name, host }
}
