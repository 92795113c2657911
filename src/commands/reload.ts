import { BaseCommand } from '../cli/base-command'

export default class Reload extends BaseCommand {
  static override description = `Replace every worker with a fresh one running the code now on disk, one at a time: each new worker serves before the old one stops accepting and drains. Same as SIGHUP to the primary.`

  static override examples = ['<%= config.bin %> reload']

  async run(): Promise<void> {
    const { flags } = await this.parse(Reload)
    const result = await this.control(flags['state-dir']).reload((line) => this.log(line))
    this.log(result)
  }
}
