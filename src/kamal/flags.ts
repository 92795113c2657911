/**
 * Flag parsing the way kamal-proxy's (Go pflag) does it, errors included: `--flag=value` and
 * `--flag value`; booleans as `--flag` or `--flag=true|false` (never `--flag false`); lists
 * repeated and comma-separated; flags and arguments in any order; `--` ends the flags. The only
 * short flag is `-h`.
 */
import { GoValueError, goQuote, parseGoBool, parseGoDuration, parseGoInt, readCsvRecord } from './go-values'

export interface FlagSpec<T> {
  type: 'bool' | 'string' | 'int' | 'duration' | 'list'
  default: T
  usage: string
}

export const boolFlag = (usage: string, fallback = false): FlagSpec<boolean> => ({ type: 'bool', default: fallback, usage })
export const stringFlag = (usage: string, fallback = ''): FlagSpec<string> => ({ type: 'string', default: fallback, usage })
export const intFlag = (usage: string, fallback = 0): FlagSpec<number> => ({ type: 'int', default: fallback, usage })
/** Nanoseconds. */
export const durationFlag = (usage: string, fallback: bigint): FlagSpec<bigint> => ({ type: 'duration', default: fallback, usage })
export const listFlag = (usage: string): FlagSpec<string[]> => ({ type: 'list', default: [], usage })

export type FlagSpecs = Record<string, FlagSpec<unknown>>
export type FlagValues<S extends FlagSpecs> = { [K in keyof S]: S[K] extends FlagSpec<infer T> ? T : never }

export interface ParsedFlags<S extends FlagSpecs> {
  values: FlagValues<S>
  /** The flags the command line set (pflag's `Changed`), defaults untouched. */
  changed: ReadonlySet<keyof S & string>
  /** Arguments that are not flags, in order. */
  args: string[]
  /** `-h` or `--help` was given. */
  help: boolean
}

/** A command-line error, printed as `Error: <message>` with exit code 1. */
export class CommandLineError extends Error {
  /** A line printed after the error, e.g. `Run 'kamal-proxy --help' for usage.` */
  hint?: string
}

/** Every flag at its default, as if none was given. */
export function defaultsOf<S extends FlagSpecs>(specs: S): FlagValues<S> {
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, spec.default])) as FlagValues<S>
}

export function parseFlags<S extends FlagSpecs>(argv: readonly string[], specs: S): ParsedFlags<S> {
  const values: Record<string, unknown> = defaultsOf(specs)
  const changed = new Set<keyof S & string>()
  const args: string[] = []
  let help = false
  const pending = [...argv]
  while (pending.length > 0) {
    const arg = pending.shift()!
    if (arg === '--') {
      args.push(...pending)
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      args.push(arg)
      continue
    }
    if (!arg.startsWith('--')) {
      help = parseShortFlags(arg) || help
      continue
    }
    const body = arg.slice(2)
    const equals = body.indexOf('=')
    const name = equals === -1 ? body : body.slice(0, equals)
    if (name === '' || name.startsWith('-') || name.startsWith('=')) throw new CommandLineError(`bad flag syntax: ${arg}`)
    const isHelp = name === 'help'
    const spec = isHelp ? boolFlag('help') : specs[name]
    if (!spec) throw new CommandLineError(`unknown flag: --${name}`)
    let text: string
    if (equals !== -1) text = body.slice(equals + 1)
    else if (spec.type === 'bool') text = 'true'
    else if (pending.length > 0) text = pending.shift()!
    else throw new CommandLineError(`flag needs an argument: ${arg}`)
    const value = convert(spec, text, name)
    if (isHelp) {
      help = value as boolean
      continue
    }
    // A list's first occurrence replaces its default; later ones add to it.
    values[name] = spec.type === 'list' && changed.has(name) ? [...(values[name] as string[]), ...(value as string[])] : value
    changed.add(name)
  }
  return { values: values as FlagValues<S>, changed, args, help }
}

/** `-h`, and nothing else: kamal-proxy defines no other short flag. */
function parseShortFlags(arg: string): boolean {
  for (const letter of arg.slice(1)) {
    if (letter !== 'h') throw new CommandLineError(`unknown shorthand flag: '${letter}' in ${arg}`)
  }
  return true
}

function convert(spec: FlagSpec<unknown>, text: string, name: string): unknown {
  try {
    switch (spec.type) {
      case 'bool': return parseGoBool(text)
      case 'string': return text
      case 'int': return parseGoInt(text)
      case 'duration': return parseGoDuration(text)
      case 'list': return readCsvRecord(text)
    }
  } catch (err) {
    if (!(err instanceof GoValueError)) throw err
    throw new CommandLineError(`invalid argument ${goQuote(text)} for ${goQuote(`--${name}`)} flag: ${err.message}`)
  }
}
