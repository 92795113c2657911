import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command'
import { InvalidOptionError } from '../../errors'
import { splitList } from '../../lib/validate'

export default class RolloutSet extends BaseCommand {
  static override description = `Choose which requests go to a service's rollout targets.

Requests are told apart by their \`kamal-rollout\` cookie: listed values always go to the rollout targets, and of the others a stable share (by a hash of the value) given by --percent; each value always lands on the same side. Requests without the cookie stay on the active targets. Replaces the previous split.`

  static override examples = [
    '<%= config.bin %> rollout set app.example.com --percent 10',
    '<%= config.bin %> rollout set app.example.com --list staff,beta-tester --percent 0',
  ]

  static override args = {
    name: Args.string({ description: 'Service name (see mproxy list)', required: true }),
  }

  static override flags = {
    percent: Flags.integer({ description: 'Share of cookie values sent to the rollout targets, 0-100 [default: 0]', helpValue: 'N' }),
    list: Flags.string({ description: 'Cookie values always sent to the rollout targets; repeatable or comma-separated [default: none]', multiple: true, helpValue: 'VALUE' }),
    quiet: Flags.boolean({ char: 'q', description: 'Print nothing but errors [default: false]' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(RolloutSet)
    if (flags.percent === undefined && flags.list === undefined) throw new InvalidOptionError('give --percent, --list, or both')
    const request = { name: args.name, percent: flags.percent, allowlist: flags.list === undefined ? undefined : splitList(flags.list) }
    const print = (line: string) => { if (!flags.quiet) this.log(line) }
    print(await this.control(flags['state-dir']).rolloutSet(request, print))
  }
}
