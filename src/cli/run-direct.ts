/**
 * `mproxy run` without oclif: the primary lives for months, and the CLI framework would stay in
 * its memory (~13 MiB) for nothing. Flags and their meaning come from the same table as the
 * oclif command, which still answers `mproxy run --help`.
 */
import { parseArgs } from 'node:util'
import { InvalidOptionError, oneLine } from '../errors'
import { setDebug } from '../lib/logger'
import { startPrimary } from '../primary/main'
import { RUN_FLAGS, resolveRunOptions, type RunFlagName, type RunFlags } from './run-options'

function parseRunFlags(argv: string[]): RunFlags {
  const options = Object.fromEntries(Object.entries(RUN_FLAGS).map(([name, spec]) => [name, {
    type: spec.type === 'boolean' ? 'boolean' as const : 'string' as const,
    multiple: 'multiple' in spec && spec.multiple,
  }]))
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new InvalidOptionError(oneLine(err).split('. ')[0])
  }
  const flags: Record<string, unknown> = { ...values }
  for (const [name, spec] of Object.entries(RUN_FLAGS)) {
    const value = values[name]
    if (spec.type === 'integer' && typeof value === 'string') {
      if (!/^-?\d+$/.test(value)) throw new InvalidOptionError(`invalid --${name as RunFlagName}: expected a whole number, got "${value}"`)
      flags[name] = Number(value)
    }
  }
  return flags as RunFlags
}

export async function runDirect(argv: string[]): Promise<void> {
  try {
    const { version } = require('../../package.json') as { version: string }
    const options = resolveRunOptions(parseRunFlags(argv), version)
    setDebug(options.debug)
    await startPrimary(options)
  } catch (err) {
    process.stderr.write(`Error: ${oneLine(err)}\n`)
    // Workers may already have been forked: make sure nothing lingers.
    process.exit(1)
  }
}
