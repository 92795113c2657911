import { BaseCommand } from '../cli/base-command'
import { SERVICE_ARGS, SERVICE_FLAGS, selectService } from '../cli/service-selector'

export default class Resume extends BaseCommand {
  static override description = `Resume a paused or stopped service: requests are proxied again, those a pause held first. Resuming a running service does nothing and succeeds.`

  static override examples = ['<%= config.bin %> resume web', '<%= config.bin %> resume --host app.example.com']

  static override args = SERVICE_ARGS
  static override flags = SERVICE_FLAGS

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Resume)
    const print = (line: string) => { if (!flags.quiet) this.log(line) }
    print(await this.control(flags['state-dir']).resume(selectService(args.name, flags.host), print))
  }
}
