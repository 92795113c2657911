import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command'
import { SERVICE_ARGS, SERVICE_FLAGS, selectService } from '../cli/service-selector'
import { formatDuration, parseDuration } from '../lib/duration'
import { DEFAULT_MAX_PAUSE_MS } from '../options'

export default class Pause extends BaseCommand {
  static override description = `Pause a service: new requests are held, not failed, until mproxy resume (then they are proxied) or until each has waited --max-pause (then 504).

Every worker holds new requests first; then this waits for the requests already sent to the service's targets to finish (up to --drain-timeout; the rest are cut) and returns: the app can then be worked on (a database migration, a restart) while clients wait. GET and HEAD of the service's health-check path are answered 200 by the proxy meanwhile, so a load balancer in front keeps this machine. Redirects to HTTPS still work. WebSocket upgrades are answered 503, and the service's open WebSockets are closed (unless it was deployed with --drain-websockets). The pause is saved: it survives a restart, applies to the whole fleet with --redis-url, and a deploy keeps it.`

  static override examples = [
    '<%= config.bin %> pause web',
    '<%= config.bin %> pause --host app.example.com --max-pause 1m',
    '<%= config.bin %> pause web --drain-timeout 10s && ./migrate && <%= config.bin %> resume web',
  ]

  static override args = SERVICE_ARGS
  static override flags = {
    ...SERVICE_FLAGS,
    'drain-timeout': Flags.string({ description: "Longest wait for the requests in flight; the rest are cut [default: the service's --drain-timeout]", helpValue: 'DURATION' }),
    'max-pause': Flags.string({ description: `Longest a new request is held before it is answered 504 [default: ${formatDuration(DEFAULT_MAX_PAUSE_MS)}, or the last pause's]`, helpValue: 'DURATION' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Pause)
    const request = {
      ...selectService(args.name, flags.host),
      drainTimeoutMs: flags['drain-timeout'] === undefined ? undefined : parseDuration(flags['drain-timeout'], 'drain timeout'),
      maxPauseMs: flags['max-pause'] === undefined ? undefined : parseDuration(flags['max-pause'], 'max pause'),
    }
    const print = (line: string) => { if (!flags.quiet) this.log(line) }
    print(await this.control(flags['state-dir']).pause(request, print))
  }
}
