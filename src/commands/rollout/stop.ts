import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command'

export default class RolloutStop extends BaseCommand {
  static override description = `Send every request of a service to its active targets again.

The rollout targets keep running and being health-checked until the next \`mproxy rollout deploy\` replaces them or the service is removed; \`mproxy rollout set\` sends requests to them again.`

  static override examples = ['<%= config.bin %> rollout stop app.example.com']

  static override args = {
    name: Args.string({ description: 'Service name (see mproxy list)', required: true }),
  }

  static override flags = {
    quiet: Flags.boolean({ char: 'q', description: 'Print nothing but errors [default: false]' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(RolloutStop)
    const print = (line: string) => { if (!flags.quiet) this.log(line) }
    print(await this.control(flags['state-dir']).rolloutStop({ name: args.name }, print))
  }
}
