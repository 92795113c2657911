import { BaseCommand } from '../cli/base-command'
import { SERVICE_ARGS, SERVICE_FLAGS, selectService } from '../cli/service-selector'

export default class Remove extends BaseCommand {
  static override description = `Remove a service: stop routing to it at once, and return when its in-flight requests have finished (up to its drain timeout). Works whether the service is running, paused or stopped.`

  static override hiddenAliases = ['rm']
  static override examples = ['<%= config.bin %> remove app1.example.com', '<%= config.bin %> remove --host app1.example.com']

  static override args = SERVICE_ARGS
  static override flags = SERVICE_FLAGS

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Remove)
    const print = (line: string) => { if (!flags.quiet) this.log(line) }
    const result = await this.control(flags['state-dir']).remove(selectService(args.name, flags.host), print)
    print(result)
  }
}
