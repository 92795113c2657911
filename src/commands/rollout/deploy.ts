import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command'
import { InvalidOptionError } from '../../errors'
import { formatDuration, parseDuration } from '../../lib/duration'
import { normalizeTarget } from '../../lib/validate'
import { DEFAULT_DEPLOY_TIMEOUT_MS } from '../../options'

export default class RolloutDeploy extends BaseCommand {
  static override description = `Deploy rollout (canary) targets beside a service's active ones.

The targets are health-checked with the service's settings, then put in the rollout slot; rollout targets they replace are drained. They get no request until \`mproxy rollout set\` says which ones. A plain deploy never changes them.`

  static override examples = [
    '<%= config.bin %> rollout deploy app.example.com web-3:3000',
    '<%= config.bin %> rollout set app.example.com --percent 10',
  ]

  static override strict = false
  static override args = {
    name: Args.string({ description: 'Service name (see mproxy list)', required: true }),
    target: Args.string({ description: 'Rollout target HOST:PORT; several are load-balanced round-robin', required: true }),
  }

  static override flags = {
    'deploy-timeout': Flags.string({ description: 'Longest wait for the rollout targets to become healthy', default: formatDuration(DEFAULT_DEPLOY_TIMEOUT_MS), helpValue: 'DURATION' }),
    quiet: Flags.boolean({ char: 'q', description: 'Print nothing but errors [default: false]' }),
  }

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(RolloutDeploy)
    const rest = (argv as string[]).slice(1)
    const unknownFlag = rest.find((arg) => arg.startsWith('-'))
    if (unknownFlag) throw new InvalidOptionError(`unknown flag ${unknownFlag}`)
    const request = {
      name: args.name,
      targets: rest.map(normalizeTarget),
      deployTimeoutMs: parseDuration(flags['deploy-timeout'], 'deploy timeout'),
    }
    const print = (line: string) => { if (!flags.quiet) this.log(line) }
    print(await this.control(flags['state-dir']).rolloutDeploy(request, print))
  }
}
