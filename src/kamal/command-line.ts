/**
 * Reads a kamal-proxy command line the way its Go CLI (cobra) does, in the same order, so the
 * same mistake gets the same first error: 1. flags, 2. the number of arguments, 3. deploy's own
 * checks, 4. required flags, 5. flag groups. Pure: the environment comes in as a value.
 */
import {
  deployFlags, pauseFlags, rolloutDeployFlags, rolloutSetFlags, runFlags, stopFlags,
  type KamalCommand, type KamalEnvironment,
} from './commands'
import { formatGoDuration } from './go-values'
import { CommandLineError, parseFlags, type FlagSpecs, type ParsedFlags } from './flags'
import { serviceOptionsProblem } from './service-options'

const BIN = 'kamal-proxy'

interface CommandDef {
  use: string
  short: string
  aliases?: string[]
  /** Reads the command line after the command's name. */
  parse?(argv: readonly string[], environment: KamalEnvironment, path: string): KamalCommand
  subcommands?: Record<string, CommandDef>
}

interface LeafDef<S extends FlagSpecs> {
  use: string
  short: string
  aliases?: string[]
  /** `one`: `<service>`; `none`: extra arguments are an unknown command; `any`: ignored. */
  args: 'one' | 'none' | 'any'
  flags: (environment: KamalEnvironment) => S
  required?: (keyof S & string)[]
  /** Flags that must be given together (or not at all). */
  together?: (keyof S & string)[]
  /** At least one of these must be given. */
  oneOf?: (keyof S & string)[]
  preRun?: (parsed: ParsedFlags<S>) => void
  build: (service: string, parsed: ParsedFlags<S>) => KamalCommand
}

function leaf<S extends FlagSpecs>(def: LeafDef<S>): CommandDef {
  return {
    use: def.use,
    short: def.short,
    aliases: def.aliases,
    parse(argv, environment, path) {
      const specs = def.flags(environment)
      const parsed = parseFlags(argv, specs)
      if (parsed.help) return { name: 'help', text: leafHelp(def, specs, path) }
      const { args } = parsed
      if (def.args === 'one' && args.length !== 1) throw new CommandLineError(`accepts 1 arg(s), received ${args.length}`)
      if (def.args === 'none' && args.length > 0) throw new CommandLineError(`unknown command ${JSON.stringify(args[0])} for ${JSON.stringify(path)}`)
      def.preRun?.(parsed)
      const missing = (def.required ?? []).filter((name) => !parsed.changed.has(name))
      if (missing.length > 0) throw new CommandLineError(`required flag(s) ${missing.map((name) => JSON.stringify(name)).join(', ')} not set`)
      const together = def.together ?? []
      const unset = together.filter((name) => !parsed.changed.has(name))
      if (unset.length > 0 && unset.length < together.length) {
        throw new CommandLineError(`if any flags in the group [${together.join(' ')}] are set they must all be set; missing [${unset.join(' ')}]`)
      }
      if (def.oneOf && !def.oneOf.some((name) => parsed.changed.has(name))) {
        throw new CommandLineError(`at least one of the flags in the group [${def.oneOf.join(' ')}] is required`)
      }
      return def.build(args[0] ?? '', parsed)
    },
  }
}

/** deploy's own checks, before the required flags are looked at. */
function checkDeploy({ values, changed }: ParsedFlags<ReturnType<typeof deployFlags>>): void {
  if (changed.has('max-request-body') && !changed.has('buffer-requests')) {
    throw new CommandLineError('max-request-body can only be set when request buffering is enabled')
  }
  if (changed.has('max-response-body') && !changed.has('buffer-responses')) {
    throw new CommandLineError('max-response-body can only be set when response buffering is enabled')
  }
  const problem = serviceOptionsProblem({
    hosts: values.host,
    pathPrefixes: values['path-prefix'],
    tls: values.tls,
    tlsOnDemandUrl: values['tls-on-demand-url'],
    tlsCertificatePath: values['tls-certificate-path'],
    tlsPrivateKeyPath: values['tls-private-key-path'],
    canonicalHost: values['canonical-host'],
  })
  if (problem) throw new CommandLineError(problem)
  // Not given: trusted without TLS (a load balancer in front terminates it), not with it.
  if (!changed.has('forward-headers')) values['forward-headers'] = !values.tls
}

const noFlags = () => ({})

const ROLLOUT: CommandDef = {
  use: 'rollout',
  short: 'Manage rollout settings',
  subcommands: {
    deploy: leaf({
      use: 'deploy <service>', short: 'Deploy the rollout target', args: 'one', flags: rolloutDeployFlags, required: ['target'],
      build: (service, { values }) => ({ name: 'rollout deploy', service, flags: values }),
    }),
    set: leaf({
      use: 'set <service>', short: 'Set traffic split for rollout', args: 'one', flags: rolloutSetFlags, oneOf: ['percent', 'list'],
      build: (service, { values }) => ({ name: 'rollout set', service, flags: values }),
    }),
    stop: leaf({
      use: 'stop <service>', short: 'Stops rollout of a service', args: 'one', flags: noFlags,
      build: (service) => ({ name: 'rollout stop', service }),
    }),
  },
}

const ROOT: CommandDef = {
  use: BIN,
  short: 'HTTP proxy for zero downtime deployments (mproxy, speaking kamal-proxy)',
  subcommands: {
    run: leaf({ use: 'run', short: 'Run the server', args: 'any', flags: runFlags, build: (_, { values }) => ({ name: 'run', flags: values }) }),
    deploy: leaf({
      use: 'deploy <service>', short: 'Deploy a target host', args: 'one', flags: deployFlags, preRun: checkDeploy,
      required: ['target'], together: ['tls-certificate-path', 'tls-private-key-path'],
      build: (service, { values, changed }) => ({ name: 'deploy', service, flags: values, changed }),
    }),
    remove: leaf({ use: 'remove <service>', short: 'Remove the service', aliases: ['rm'], args: 'one', flags: noFlags, build: (service) => ({ name: 'remove', service }) }),
    pause: leaf({ use: 'pause <service>', short: 'Pause a service', args: 'one', flags: pauseFlags, build: (service, { values }) => ({ name: 'pause', service, flags: values }) }),
    stop: leaf({ use: 'stop <service>', short: 'Stop a service', args: 'one', flags: stopFlags, build: (service, { values }) => ({ name: 'stop', service, flags: values }) }),
    resume: leaf({ use: 'resume <service>', short: 'Resume a service', args: 'one', flags: noFlags, build: (service) => ({ name: 'resume', service }) }),
    list: leaf({ use: 'list', short: 'List the services currently running', aliases: ['ls'], args: 'none', flags: noFlags, build: () => ({ name: 'list' }) }),
    rollout: ROLLOUT,
  },
}

/** Parses `argv` (without the program name), or throws a CommandLineError with kamal-proxy's message. */
export function parseCommandLine(argv: readonly string[], environment: KamalEnvironment): KamalCommand {
  return dispatch(ROOT, BIN, argv, environment)
}

function dispatch(def: CommandDef, path: string, argv: readonly string[], environment: KamalEnvironment): KamalCommand {
  if (def.parse) return def.parse(argv, environment, path)
  const subcommands = def.subcommands ?? {}
  const index = argv.findIndex((arg) => !arg.startsWith('-'))
  const rest = argv.filter((_, i) => i !== index)
  if (index === -1) {
    // Only flags: the group's own, which are -h and --help.
    parseFlags(rest, {})
    return { name: 'help', text: groupHelp(def, path) }
  }
  const word = argv[index]
  if (word === 'help' && path === BIN) {
    const topic = rest.find((arg) => !arg.startsWith('-'))
    const target = topic === undefined ? undefined : findSubcommand(subcommands, topic)
    return { name: 'help', text: target ? helpFor(target, `${BIN} ${target[0]}`, environment) : groupHelp(def, path) }
  }
  const found = findSubcommand(subcommands, word)
  if (!found) {
    if (path !== BIN) return { name: 'help', text: groupHelp(def, path) }
    const error = new CommandLineError(`unknown command ${JSON.stringify(word)} for ${JSON.stringify(path)}${suggestions(subcommands, word)}`)
    error.hint = `Run '${path} --help' for usage.`
    throw error
  }
  return dispatch(found[1], `${path} ${found[0]}`, rest, environment)
}

function findSubcommand(subcommands: Record<string, CommandDef>, word: string): [string, CommandDef] | undefined {
  return Object.entries(subcommands).find(([name, def]) => name === word || def.aliases?.includes(word))
}

/** cobra's "Did you mean this?": names within two edits, or starting with what was typed. */
function suggestions(subcommands: Record<string, CommandDef>, typed: string): string {
  const names = Object.keys(subcommands).filter((name) =>
    editDistance(typed.toLowerCase(), name.toLowerCase()) <= 2 || name.toLowerCase().startsWith(typed.toLowerCase()))
  return names.length === 0 ? '' : `\n\nDid you mean this?\n${names.map((name) => `\t${name}\n`).join('')}`
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]
}

function helpFor([name, def]: [string, CommandDef], path: string, environment: KamalEnvironment): string {
  if (!def.parse) return groupHelp(def, path)
  const result = def.parse(['--help'], environment, path)
  return result.name === 'help' ? result.text : name
}

function groupHelp(def: CommandDef, path: string): string {
  const entries = Object.entries(def.subcommands ?? {})
  const width = Math.max(...entries.map(([name]) => name.length))
  return [
    def.short, '', 'Usage:', `  ${path} [command]`, '', 'Available Commands:',
    ...entries.map(([name, sub]) => `  ${name.padEnd(width)}  ${sub.short}`),
    '', 'Flags:', `  -h, --help   help for ${path.split(' ').pop()}`, '',
    `Use "${path} [command] --help" for more information about a command.`, '',
  ].join('\n')
}

function leafHelp<S extends FlagSpecs>(def: LeafDef<S>, specs: S, path: string): string {
  const name = path.split(' ').pop()!
  const typeNames = { bool: '', string: ' string', int: ' int', duration: ' duration', list: ' strings' }
  const rows = Object.entries(specs).map(([flag, spec]) => [`      --${flag}${typeNames[spec.type]}`, spec.usage + describeDefault(spec.default)])
  rows.push([`  -h, --help`, `help for ${name}`])
  const width = Math.max(...rows.map(([left]) => left.length))
  return [
    def.short, '', 'Usage:', `  ${path.replace(/ [^ ]+$/, '')} ${def.use}${Object.keys(specs).length > 0 ? ' [flags]' : ''}`,
    ...(def.aliases ? ['', 'Aliases:', `  ${[name, ...def.aliases].join(', ')}`] : []),
    '', 'Flags:', ...rows.map(([left, right]) => `${left.padEnd(width)}   ${right}`), '',
  ].join('\n')
}

function describeDefault(value: unknown): string {
  if (value === false || value === '' || value === 0 || (Array.isArray(value) && value.length === 0)) return ''
  if (typeof value === 'bigint') return ` (default ${formatGoDuration(value)})`
  if (typeof value === 'string') return ` (default "${value}")`
  return ` (default ${String(value)})`
}
