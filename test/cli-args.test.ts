import { normalizeBooleanFlags, wholeLine } from '../src/cli/base-command'
import { errorLines, makeStateDir, runCli } from './helpers'

const BOOLEANS = new Set(['ssl', 'tls', 'force'])

describe('normalizeBooleanFlags', () => {
  it.each<[string, string[], string[]]>([
    ['keeps a bare flag', ['web:3000', '--ssl'], ['web:3000', '--ssl']],
    ['turns =true into the bare flag', ['web:3000', '--ssl=true'], ['web:3000', '--ssl']],
    ['drops =false', ['web:3000', '--ssl=false', '--host', 'a.test'], ['web:3000', '--host', 'a.test']],
    ['reads an alias', ['--tls=false', '--force=true'], ['--force']],
    ['leaves other flags with values alone', ['--host=a.test', '--deploy-timeout=5s'], ['--host=a.test', '--deploy-timeout=5s']],
  ])('%s', (_case, argv, expected) => {
    expect(normalizeBooleanFlags(argv, BOOLEANS)).toEqual(expected)
  })

  it('refuses a value other than true or false', () => {
    expect(() => normalizeBooleanFlags(['--ssl=yes'], BOOLEANS)).toThrow('invalid --ssl=yes: expected true or false')
  })
})

describe('wholeLine', () => {
  it.each([
    ['a missing argument, with its description', 'Missing 1 required arg:\ntarget  Target HOST:PORT\nSee more help with --help', 'missing TARGET (Target HOST:PORT)'],
    ['a one-line message', 'Nonexistent flag: --bogus', 'Nonexistent flag: --bogus'],
  ])('%s', (_case, message, expected) => {
    expect(wholeLine(message)).toBe(expected)
  })
})

describe('CLI input errors', () => {
  it.each([
    ['an unknown command with an argument', ['halt', 'web'], /^Error: unknown command "halt"; see mproxy --help$/],
    ['deploy without a target', ['deploy'], /^Error: missing TARGET \(Target HOST:PORT/],
    ['a boolean flag with another value', ['deploy', 'web:3000', '--ssl=maybe'], /^Error: invalid --ssl=maybe: expected true or false$/],
  ])('%s: exit 1 and one whole Error line', async (_case, args, message) => {
    const result = await runCli(args, { stateDir: makeStateDir() })

    expect(result.code).toBe(1)
    const lines = errorLines(result.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(message)
  })

  it('reads --ssl=false as no TLS, not as a target', async () => {
    const result = await runCli(['deploy', 'web:3000', '--ssl=false'], { stateDir: makeStateDir() })

    expect(result.code).toBe(1)
    expect(errorLines(result.stderr)[0]).toMatch(/no mproxy is running/)
  })
})
