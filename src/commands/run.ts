import { Flags } from '@oclif/core'
import { setDebug } from '../lib/logger'
import { startPrimary } from '../primary/main'
import { BaseCommand } from '../cli/base-command'
import { describeRunFlag, resolveRunOptions } from '../cli/run-options'

/**
 * Help and parsing for `mproxy run` under oclif. `bin/run.js` normally starts the primary through
 * `cli/run-direct` instead, with the same flag table; this class serves `--help` and callers that
 * run commands through oclif.
 */
export default class Run extends BaseCommand {
  static override description = `Run the proxy: a primary process and its workers, in the foreground.

Logs are JSON lines on stdout. SIGTERM or SIGINT stops accepting connections, lets in-flight requests finish (up to --shutdown-timeout) and exits 0. SIGHUP replaces the workers one at a time; SIGUSR2 replaces the whole process with no gap (mproxy upgrade). Started on the state dir of a running proxy, it takes over from it: the running one hands over and exits once drained. Every option can also be set in the environment as MPROXY_<NAME> (e.g. MPROXY_HTTP_PORT=8080); the ports also read HTTP_PORT, HTTPS_PORT and METRICS_PORT. An explicit flag beats the environment.`

  static override examples = [
    '<%= config.bin %> run',
    '<%= config.bin %> run --http-port 8080 --workers 2',
    '<%= config.bin %> run --metrics-port 9090',
    'HTTP_PORT=8080 <%= config.bin %> run',
  ]

  static override flags = {
    'http-port': Flags.integer({ description: describeRunFlag('http-port') }),
    'https-port': Flags.integer({ description: describeRunFlag('https-port') }),
    'metrics-port': Flags.string({ description: describeRunFlag('metrics-port'), helpValue: 'PORT|auto' }),
    workers: Flags.integer({ description: describeRunFlag('workers') }),
    'trusted-proxy': Flags.string({ description: describeRunFlag('trusted-proxy'), multiple: true, helpValue: 'CIDR' }),
    'shutdown-timeout': Flags.string({ description: describeRunFlag('shutdown-timeout'), helpValue: 'DURATION' }),
    'response-idle-timeout': Flags.string({ description: describeRunFlag('response-idle-timeout'), helpValue: 'DURATION' }),
    'acme-directory': Flags.string({ description: describeRunFlag('acme-directory'), helpValue: 'URL' }),
    'acme-staging': Flags.boolean({ description: describeRunFlag('acme-staging') }),
    'acme-email': Flags.string({ description: describeRunFlag('acme-email'), helpValue: 'EMAIL' }),
    'redis-url': Flags.string({ description: describeRunFlag('redis-url'), helpValue: 'URL' }),
    'redis-prefix': Flags.string({ description: describeRunFlag('redis-prefix'), helpValue: 'PREFIX' }),
    'node-name': Flags.string({ description: describeRunFlag('node-name'), helpValue: 'NAME' }),
    'access-log': Flags.string({ description: describeRunFlag('access-log'), helpValue: 'true|false' }),
    debug: Flags.boolean({ description: describeRunFlag('debug') }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Run)
    const options = resolveRunOptions(flags, this.config.version)
    setDebug(options.debug)
    await startPrimary(options)
  }

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<void> {
    await super.catch(err)
    // Workers may already have been forked: make sure nothing lingers.
    process.exit(process.exitCode ?? 1)
  }
}
