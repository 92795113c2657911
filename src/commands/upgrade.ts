import { BaseCommand } from '../cli/base-command'

export default class Upgrade extends BaseCommand {
  static override description = `Replace the whole proxy, primary and workers, with a new process running the code now on disk, with no gap: the running primary starts \`mproxy run\` with its own arguments and environment and hands it the listening sockets; once the new one serves, the old one finishes its requests and exits. If the new process fails, the old one keeps serving and this exits 1. Same as SIGUSR2 to the primary (systemctl reload mproxy). To replace only the workers: mproxy reload.`

  static override examples = ['<%= config.bin %> upgrade']

  async run(): Promise<void> {
    const { flags } = await this.parse(Upgrade)
    const result = await this.control(flags['state-dir']).upgrade((line) => this.log(line))
    this.log(result)
  }
}
