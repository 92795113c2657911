import { parseCommandLine } from '../src/kamal/command-line'
import type { KamalCommand } from '../src/kamal/commands'
import { CommandLineError } from '../src/kamal/flags'
import { serviceOptionsProblem, type KamalServiceOptions } from '../src/kamal/service-options'

const S = 1_000_000_000n
const environment = { env: {}, dataDir: '/home/app/.config/kamal-proxy' }
const parse = (line: string[], env: NodeJS.ProcessEnv = {}) => parseCommandLine(line, { ...environment, env })

function deploy(line: string[]): Extract<KamalCommand, { name: 'deploy' }> {
  const command = parse(['deploy', ...line])
  if (command.name !== 'deploy') throw new Error(`parsed as ${command.name}`)
  return command
}

function failure(line: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parse(line, env)
  } catch (err) {
    if (!(err instanceof CommandLineError)) throw err
    return err.message
  }
  throw new Error(`${line.join(' ')} was accepted`)
}

describe('kamal-proxy command line: flag forms', () => {
  it.each<[string, string[], Partial<Extract<KamalCommand, { name: 'deploy' }>['flags']>]>([
    ['--flag=value', ['--target=web-1:3000'], { target: ['web-1:3000'] }],
    ['--flag value', ['--target', 'web-1:3000'], { target: ['web-1:3000'] }],
    ['a value that starts with a dash', ['--target', 'web-1:3000', '--health-check-path', '-up'], { 'health-check-path': '-up' }],
    ['a repeated list', ['--target', 'a:1', '--host', 'a.test', '--host', 'b.test'], { host: ['a.test', 'b.test'] }],
    ['a comma-separated list', ['--target', 'a:1,b:2'], { target: ['a:1', 'b:2'] }],
    ['both list forms', ['--target', 'a:1', '--host=a.test,b.test', '--host', 'c.test'], { host: ['a.test', 'b.test', 'c.test'] }],
    ['an empty list value', ['--target', 'a:1', '--host='], { host: [] }],
    ['a quoted comma in a list', ['--target', 'a:1', '--log-request-header', '"X-A,B",X-C'], { 'log-request-header': ['X-A,B', 'X-C'] }],
    ['a bare boolean', ['--target', 'a:1', '--force'], { force: true }],
    ['--flag=true', ['--target', 'a:1', '--force=true'], { force: true }],
    ['--flag=false on a default-true boolean', ['--target', 'a:1', '--tls-redirect=false', '--strip-path-prefix=0'], { 'tls-redirect': false, 'strip-path-prefix': false }],
    ['--flag=T and =F', ['--target', 'a:1', '--force=T', '--tls-redirect=F'], { force: true, 'tls-redirect': false }],
    ['a duration', ['--target', 'a:1', '--deploy-timeout', '1m30s', '--drain-timeout=500ms'], { 'deploy-timeout': 90n * S, 'drain-timeout': S / 2n }],
    ['a bare 0 duration', ['--target', 'a:1', '--drain-timeout=0'], { 'drain-timeout': 0n }],
    ['sizes in bytes', ['--target', 'a:1', '--buffer-memory', '2048'], { 'buffer-memory': 2048 }],
    ['defaults', ['--target', 'a:1'], {
      'strip-path-prefix': true, 'tls-redirect': true, 'deploy-timeout': 30n * S, 'drain-timeout': 30n * S, 'health-check-interval': S,
      'health-check-timeout': 5n * S, 'health-check-path': '/up', 'target-timeout': 30n * S, 'buffer-memory': 1_048_576,
      'tls-acme-cache-path': '/home/app/.config/kamal-proxy/certs', host: [], force: false,
    }],
  ])('reads %s', (_case, line, expected) => {
    expect(deploy(['web', ...line]).flags).toMatchObject(expected)
  })

  it('takes arguments before, between and after flags, and everything after -- as arguments', () => {
    expect(deploy(['--target', 'a:1', 'web']).service).toBe('web')
    expect(deploy(['--target=a:1', '--', 'web']).service).toBe('web')
    expect(failure(['deploy', '--target=a:1', '--', 'web', '--force'])).toBe('accepts 1 arg(s), received 2')
  })

  it('records which flags were given, also with their default value', () => {
    expect([...deploy(['web', '--target', 'a:1', '--tls-redirect=true']).changed].sort()).toEqual(['target', 'tls-redirect'])
  })

  it('parses every command into its request shape', () => {
    expect(parse(['rm', 'web'])).toEqual({ name: 'remove', service: 'web' })
    expect(parse(['ls'])).toEqual({ name: 'list' })
    expect(parse(['resume', 'web'])).toEqual({ name: 'resume', service: 'web' })
    expect(parse(['stop', 'web', '--drain-timeout=10s', '--message=Back soon'])).toEqual({ name: 'stop', service: 'web', flags: { 'drain-timeout': 10n * S, message: 'Back soon' } })
    expect(parse(['pause', 'web', '--max-pause', '1m'])).toEqual({ name: 'pause', service: 'web', flags: { 'drain-timeout': 30n * S, 'max-pause': 60n * S } })
    expect(parse(['rollout', 'deploy', 'web', '--target', 'b:1'])).toEqual({ name: 'rollout deploy', service: 'web', flags: { target: ['b:1'], 'read-target': [], 'deploy-timeout': 30n * S, 'drain-timeout': 30n * S } })
    expect(parse(['rollout', 'set', 'web', '--percent=-5', '--list', 'a,b'])).toEqual({ name: 'rollout set', service: 'web', flags: { percent: -5, list: ['a', 'b'] } })
    expect(parse(['rollout', 'stop', 'web'])).toEqual({ name: 'rollout stop', service: 'web' })
    expect(parse(['run', 'ignored-argument'])).toMatchObject({ name: 'run' })
  })

  it.each([[[]], [['--help']], [['-h']], [['help']], [['deploy', '-h']], [['deploy', '--help', 'web']], [['help', 'deploy']], [['rollout']], [['rollout', 'nope']]])('answers %j with help', (line) => {
    expect(parse(line).name).toBe('help')
  })
})

describe('kamal-proxy command line: errors, in kamal-proxy\'s order and words', () => {
  it.each<[string, string[], string]>([
    ['an unknown command', ['deplyo'], 'unknown command "deplyo" for "kamal-proxy"\n\nDid you mean this?\n\tdeploy\n'],
    ['an unknown command with nothing like it', ['frobnicate'], 'unknown command "frobnicate" for "kamal-proxy"'],
    ['an unknown flag', ['deploy', 'web', '--target=a:1', '--foo'], 'unknown flag: --foo'],
    ['an unknown flag with a value', ['deploy', 'web', '--foo=bar'], 'unknown flag: --foo'],
    ['an unknown short flag', ['deploy', 'web', '-t', 'a:1'], "unknown shorthand flag: 't' in -t"],
    ['a bad flag', ['deploy', 'web', '---target'], 'bad flag syntax: ---target'],
    ['a flag without its value', ['deploy', 'web', '--target'], 'flag needs an argument: --target'],
    ['a duration without unit', ['deploy', 'web', '--target=a:1', '--deploy-timeout', '30'], 'invalid argument "30" for "--deploy-timeout" flag: time: missing unit in duration "30"'],
    ['a duration with an unknown unit', ['deploy', 'web', '--target=a:1', '--drain-timeout=5sec'], 'invalid argument "5sec" for "--drain-timeout" flag: time: unknown unit "sec" in duration "5sec"'],
    ['a size with a unit', ['deploy', 'web', '--target=a:1', '--buffer-memory=1MB'], 'invalid argument "1MB" for "--buffer-memory" flag: strconv.ParseInt: parsing "1MB": invalid syntax'],
    ['a boolean word Go does not know', ['deploy', 'web', '--target=a:1', '--tls=yes'], 'invalid argument "yes" for "--tls" flag: strconv.ParseBool: parsing "yes": invalid syntax'],
    ['a space-separated boolean value (it becomes an argument)', ['deploy', 'web', '--target=a:1', '--force', 'false'], 'accepts 1 arg(s), received 2'],
    ['no service', ['deploy', '--target=a:1'], 'accepts 1 arg(s), received 0'],
    ['two services', ['remove', 'a', 'b'], 'accepts 1 arg(s), received 2'],
    ['no target', ['deploy', 'web'], 'required flag(s) "target" not set'],
    ['a rollout without target', ['rollout', 'deploy', 'web'], 'required flag(s) "target" not set'],
    ['a certificate without its key', ['deploy', 'web', '--target=a:1', '--tls-certificate-path=c.pem'],
      'if any flags in the group [tls-certificate-path tls-private-key-path] are set they must all be set; missing [tls-private-key-path]'],
    ['a key without its certificate', ['deploy', 'web', '--target=a:1', '--tls-private-key-path=k.pem'],
      'if any flags in the group [tls-certificate-path tls-private-key-path] are set they must all be set; missing [tls-certificate-path]'],
    ['a rollout split without percent or list', ['rollout', 'set', 'web'], 'at least one of the flags in the group [percent list] is required'],
    ['arguments to list', ['list', 'web'], 'unknown command "web" for "kamal-proxy list"'],
    ['a body limit without request buffering', ['deploy', 'web', '--target=a:1', '--max-request-body=10'], 'max-request-body can only be set when request buffering is enabled'],
    ['a body limit without response buffering', ['deploy', 'web', '--target=a:1', '--max-response-body=10'], 'max-response-body can only be set when response buffering is enabled'],
    // Validation order: flags, then arguments, then deploy's checks, then required flags, then groups.
    ['a bad flag before a missing argument', ['deploy', '--deploy-timeout=30'], 'invalid argument "30" for "--deploy-timeout" flag: time: missing unit in duration "30"'],
    ['a missing argument before deploy\'s checks', ['deploy', '--tls'], 'accepts 1 arg(s), received 0'],
    ['deploy\'s checks before the required target', ['deploy', 'web', '--tls'], 'service options invalid: host must be set when using TLS'],
    ['the required target before the certificate group', ['deploy', 'web', '--tls-certificate-path=c.pem'], 'required flag(s) "target" not set'],
  ])('refuses %s', (_case, line, message) => {
    expect(failure(line)).toBe(message)
  })

  it('points to the help after an unknown command', () => {
    try {
      parse(['nope'])
    } catch (err) {
      expect((err as CommandLineError).hint).toBe("Run 'kamal-proxy --help' for usage.")
    }
    expect.assertions(1)
  })

  it('accepts a body limit once buffering was given, even as false (kamal-proxy checks that the flag was given)', () => {
    expect(deploy(['web', '--target=a:1', '--buffer-requests=false', '--max-request-body=10']).flags['max-request-body']).toBe(10)
  })
})

describe('kamal-proxy run: flags and environment', () => {
  const run = (line: string[], env: NodeJS.ProcessEnv = {}) => {
    const command = parse(['run', ...line], env)
    if (command.name !== 'run') throw new Error(command.name)
    return command.flags
  }

  it.each<[string, string[], NodeJS.ProcessEnv, { http: number; https: number; debug: boolean; metrics: number }]>([
    ['the defaults', [], {}, { http: 80, https: 443, debug: false, metrics: 0 }],
    ['HTTP_PORT and HTTPS_PORT', [], { HTTP_PORT: '8080', HTTPS_PORT: '8443' }, { http: 8080, https: 8443, debug: false, metrics: 0 }],
    ['KAMAL_PROXY_HTTP_PORT before HTTP_PORT', [], { KAMAL_PROXY_HTTP_PORT: '81', HTTP_PORT: '8080' }, { http: 81, https: 443, debug: false, metrics: 0 }],
    ['an empty KAMAL_PROXY_HTTP_PORT, which exists: HTTP_PORT is not read, the default applies', [], { KAMAL_PROXY_HTTP_PORT: '', HTTP_PORT: '8080' }, { http: 80, https: 443, debug: false, metrics: 0 }],
    ['an unparsable value, silently ignored', [], { HTTP_PORT: 'eighty', DEBUG: 'yes' }, { http: 80, https: 443, debug: false, metrics: 0 }],
    ['DEBUG and METRICS_PORT', [], { DEBUG: 't', KAMAL_PROXY_METRICS_PORT: '9000' }, { http: 80, https: 443, debug: true, metrics: 9000 }],
    ['a flag before the environment', ['--http-port', '8000', '--debug=false'], { HTTP_PORT: '8080', DEBUG: '1' }, { http: 8000, https: 443, debug: false, metrics: 0 }],
  ])('takes %s', (_case, line, env, expected) => {
    const flags = run(line, env)
    expect({ http: flags['http-port'], https: flags['https-port'], debug: flags.debug, metrics: flags['metrics-port'] }).toEqual(expected)
  })

  it('reads no environment for --http3', () => {
    expect(run([], { HTTP3: 'true', KAMAL_PROXY_HTTP3: 'true' }).http3).toBe(false)
    expect(run(['--http3']).http3).toBe(true)
  })
})

describe('kamal-proxy service options check', () => {
  const valid: KamalServiceOptions = { hosts: [], pathPrefixes: [], tls: false, tlsOnDemandUrl: '', tlsCertificatePath: '', tlsPrivateKeyPath: '', canonicalHost: '' }
  const prefix = 'service options invalid: '

  it.each<[string, Partial<KamalServiceOptions>, string | undefined]>([
    ['no options', {}, undefined],
    ['TLS with a host', { tls: true, hosts: ['a.test'] }, undefined],
    ['an on-demand URL without TLS', { tlsOnDemandUrl: '/allow' }, 'TLS must be enabled to use a TLS on-demand URL'],
    ['hosts with an on-demand URL', { tls: true, tlsOnDemandUrl: '/allow', hosts: ['a.test'] }, 'cannot set hosts when using a TLS on-demand URL'],
    ['a certificate with an on-demand URL', { tls: true, tlsOnDemandUrl: '/allow', tlsCertificatePath: 'c.pem' }, 'cannot use a custom TLS certificate with a TLS on-demand URL'],
    ['a canonical host with an on-demand URL', { tls: true, tlsOnDemandUrl: '/allow', canonicalHost: 'a.test' }, 'cannot set a canonical host when using a TLS on-demand URL'],
    ['a protocol-relative on-demand URL', { tls: true, tlsOnDemandUrl: '//x.test/allow' }, 'tls-on-demand-url must be a path or an absolute http(s) URL'],
    ['a relative on-demand URL', { tls: true, tlsOnDemandUrl: 'allow-host' }, 'unable to parse tls-on-demand-url: parse "allow-host": invalid URI for request'],
    ['an on-demand URL of another scheme', { tls: true, tlsOnDemandUrl: 'ftp://x.test/allow' }, 'unsupported scheme "ftp" in tls-on-demand-url'],
    ['an on-demand URL without host', { tls: true, tlsOnDemandUrl: 'http://' }, 'missing host in tls-on-demand-url'],
    ['TLS without hosts', { tls: true }, 'host must be set when using TLS'],
    ['TLS with an empty host among others (not configured hosts)', { tls: true, hosts: ['*.a.test', ''] }, 'host must be set when using TLS'],
    ['TLS on a path-prefixed service', { tls: true, hosts: ['a.test'], pathPrefixes: ['/api'] }, 'TLS settings must be specified on the root path service'],
    ['TLS on a service that also has the root', { tls: true, hosts: ['a.test'], pathPrefixes: ['/api', '/'] }, undefined],
    ['a canonical host that is not among the hosts', { hosts: ['example.com', 'www.example.com'], canonicalHost: 'api.example.com' },
      "canonical-host 'api.example.com' must be present in the hosts list: [example.com www.example.com]"],
    ['a canonical host without hosts', { canonicalHost: 'example.com' }, undefined],
  ])('%s', (_case, options, message) => {
    expect(serviceOptionsProblem({ ...valid, ...options })).toBe(message === undefined ? undefined : prefix + message)
  })
})
