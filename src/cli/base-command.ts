/**
 * What every CLI verb shares: the `--state-dir` flag, the control client, and turning any
 * failure into one `Error: <line>` on stderr with exit code 1.
 */
import { Command, Flags } from '@oclif/core'
import { ControlClient } from '../control/client'
import { oneLine } from '../errors'
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

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<void> {
    // oclif signals `this.exit()` and `--help` with errors that carry an exit code.
    if (err.oclif?.exit !== undefined && err.message.startsWith('EEXIT')) throw err
    process.stderr.write(`Error: ${oneLine(err)}\n`)
    process.exitCode = 1
  }
}
