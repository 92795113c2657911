import { Args, Flags } from '@oclif/core'
import { InvalidOptionError } from '../errors'
import { BaseCommand } from '../cli/base-command'

export default class Remove extends BaseCommand {
  static override description = `Remove a service: stop routing to it at once, and return when its in-flight requests have finished (up to its drain timeout).`

  static override hiddenAliases = ['rm']
  static override examples = ['<%= config.bin %> remove app1.example.com', '<%= config.bin %> remove --host app1.example.com']

  static override args = {
    name: Args.string({ description: 'Service name (see mproxy list)' }),
  }

  static override flags = {
    host: Flags.string({ description: 'Remove the service that answers for this host instead of naming it', helpValue: 'HOST' }),
    quiet: Flags.boolean({ char: 'q', description: 'Print nothing but errors [default: false]' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Remove)
    if (!args.name && flags.host === undefined) throw new InvalidOptionError('give a service name or --host HOST')
    if (args.name && flags.host !== undefined) throw new InvalidOptionError('give either a service name or --host, not both')
    const print = (line: string) => { if (!flags.quiet) this.log(line) }
    const result = await this.control(flags['state-dir']).remove({ name: args.name, host: flags.host }, print)
    print(result)
  }
}
