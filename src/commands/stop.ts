import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command'
import { SERVICE_ARGS, SERVICE_FLAGS, selectService } from '../cli/service-selector'
import { parseDuration } from '../lib/duration'

export default class Stop extends BaseCommand {
  static override description = `Stop a service for maintenance: new requests, and those a pause holds, get a 503 page that shows --message, until mproxy resume.

Every worker answers the 503 page first; then this waits for the requests already sent to the service's targets to finish (up to --drain-timeout; the rest are cut) and returns. GET and HEAD of the service's health-check path are answered 200 by the proxy meanwhile, so a load balancer in front keeps this machine. Redirects to HTTPS still work. WebSocket upgrades are answered 503, and the service's open WebSockets are closed (unless it was deployed with --drain-websockets). The page is the service's 503.html when it was deployed with --error-pages. The stop is saved: it survives a restart, applies to the whole fleet with --redis-url, and a deploy keeps it.`

  static override examples = [
    '<%= config.bin %> stop web --message "Back at 14:00 after an upgrade"',
    '<%= config.bin %> stop --host app.example.com',
  ]

  static override args = SERVICE_ARGS
  static override flags = {
    ...SERVICE_FLAGS,
    message: Flags.string({ description: 'Text of the 503 page (shown as text, not HTML) [default: a general maintenance text]', helpValue: 'TEXT' }),
    'drain-timeout': Flags.string({ description: "Longest wait for the requests in flight; the rest are cut [default: the service's --drain-timeout]", helpValue: 'DURATION' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Stop)
    const request = {
      ...selectService(args.name, flags.host),
      drainTimeoutMs: flags['drain-timeout'] === undefined ? undefined : parseDuration(flags['drain-timeout'], 'drain timeout'),
      message: flags.message,
    }
    const print = (line: string) => { if (!flags.quiet) this.log(line) }
    print(await this.control(flags['state-dir']).stop(request, print))
  }
}
