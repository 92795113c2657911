/**
 * What every CLI verb shares: the `--state-dir` flag, the control client, and turning any
 * failure into one `Error: <line>` on stderr with exit code 1.
 */
import { Command, Flags } from '@oclif/core'
import { ControlClient } from '../control/client'
import { InvalidOptionError } from '../errors'
import { resolveStateDir } from '../lib/state-dir'
import { describeRunFlag } from './run-options'

export abstract class BaseCommand extends Command {
  static override baseFlags = {
    'state-dir': Flags.string({ description: describeRunFlag('state-dir'), helpValue: 'DIR' }),
  }

  protected stateDir(flag: string | undefined): string {
    return resolveStateDir(flag)
  }

  protected control(stateDirFlag: string | undefined): ControlClient {
    return new ControlClient(this.stateDir(stateDirFlag))
  }

  /** Every boolean flag takes `--flag`, `--flag=true` and `--flag=false`. */
  protected override async init(): Promise<void> {
    const flags = Object.entries(this.ctor.flags ?? {}).filter(([, flag]) => flag.type === 'boolean')
    const names = new Set(flags.flatMap(([name, flag]) => [name, ...(flag.aliases ?? [])]))
    this.argv = normalizeBooleanFlags(this.argv, names)
    await super.init()
  }

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<void> {
    // oclif signals `this.exit()` and `--help` with errors that carry an exit code.
    if (err.oclif?.exit !== undefined && err.message.startsWith('EEXIT')) throw err
    process.stderr.write(`Error: ${wholeLine(err.message)}\n`)
    process.exitCode = 1
  }
}

/** `--flag=true` becomes `--flag`, `--flag=false` disappears; any other value is an error. */
export function normalizeBooleanFlags(argv: readonly string[], booleans: ReadonlySet<string>): string[] {
  const out: string[] = []
  for (const arg of argv) {
    const match = /^--([\w-]+)=(.*)$/.exec(arg)
    if (!match || !booleans.has(match[1])) {
      out.push(arg)
      continue
    }
    const [, name, value] = match
    if (value === 'true') out.push(`--${name}`)
    else if (value !== 'false') throw new InvalidOptionError(`invalid --${name}=${value}: expected true or false`)
  }
  return out
}

/** oclif's multi-line messages (a missing argument, with its description and notes) as one line. */
export function wholeLine(message: string): string {
  const lines = message.split('\n').map((line) => line.trim()).filter((line) => line !== '')
  const missing = /^Missing \d+ required args?:$/.test(lines[0] ?? '') ? lines[1]?.split(/\s{2,}/) : undefined
  if (missing) return `missing ${missing[0].toUpperCase()}${missing[1] ? ` (${missing[1]})` : ''}`
  return lines[0] ?? message
}
