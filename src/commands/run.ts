import os from 'node:os'
import { isIP } from 'node:net'
import { Flags } from '@oclif/core'
import { InvalidOptionError } from '../errors'
import { formatDuration, parseDuration } from '../lib/duration'
import { setDebug } from '../lib/logger'
import { DEFAULT_HTTP_PORT, DEFAULT_HTTPS_PORT, DEFAULT_SHUTDOWN_TIMEOUT_MS } from '../options'
import { startPrimary } from '../primary/main'
import { BaseCommand } from '../cli/base-command'

/** An explicit flag beats MPROXY_<NAME>, which beats the plain name kamal-proxy also reads. */
function fromEnv(names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = process.env[name]
    if (value !== undefined && value !== '') return { name, value }
  }
  return undefined
}

function portOption(flagName: string, flag: number | undefined, envNames: string[], fallback: number): number {
  if (flag !== undefined) return checkPort(flag, `--${flagName}`)
  const env = fromEnv(envNames)
  return env ? checkPort(Number(env.value), env.name) : fallback
}

function checkPort(port: number, source: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidOptionError(`invalid ${source}: port must be 0-65535`)
  return port
}

function checkTrustedProxy(entry: string): string {
  const [address, prefix, extra] = entry.split('/')
  const family = isIP(address)
  const bits = family === 6 ? 128 : 32
  if (!family || extra !== undefined || (prefix !== undefined && !(Number(prefix) >= 0 && Number(prefix) <= bits && /^\d+$/.test(prefix)))) {
    throw new InvalidOptionError(`invalid trusted proxy "${entry}": expected an IP address or CIDR like 10.0.0.0/8`)
  }
  return entry
}

export default class Run extends BaseCommand {
  static override description = `Run the proxy: a primary process and its workers, in the foreground.

Logs are JSON lines on stdout. SIGTERM or SIGINT stops accepting connections, lets in-flight requests finish (up to --shutdown-timeout) and exits 0. SIGHUP replaces the workers one at a time. Every option can also be set in the environment as MPROXY_<NAME> (e.g. MPROXY_HTTP_PORT=8080); the ports also read HTTP_PORT and HTTPS_PORT. An explicit flag beats the environment.`

  static override examples = [
    '<%= config.bin %> run',
    '<%= config.bin %> run --http-port 8080 --workers 2',
    'HTTP_PORT=8080 <%= config.bin %> run',
  ]

  static override flags = {
    'http-port': Flags.integer({ description: `Port for HTTP; 0 picks a free port [default: ${DEFAULT_HTTP_PORT}; env MPROXY_HTTP_PORT, HTTP_PORT]` }),
    'https-port': Flags.integer({ description: `Port for HTTPS, once TLS is enabled [default: ${DEFAULT_HTTPS_PORT}; env MPROXY_HTTPS_PORT, HTTPS_PORT]` }),
    workers: Flags.integer({ description: 'Worker processes that proxy requests [default: one per CPU; env MPROXY_WORKERS]' }),
    'trusted-proxy': Flags.string({
      description: 'Address or CIDR of a proxy in front of mproxy whose X-Forwarded-* headers are kept; repeatable [default: none; env MPROXY_TRUSTED_PROXIES, comma-separated]',
      multiple: true,
      helpValue: 'CIDR',
    }),
    'shutdown-timeout': Flags.string({
      description: `How long SIGTERM waits for in-flight requests before cutting them [default: ${formatDuration(DEFAULT_SHUTDOWN_TIMEOUT_MS)}; env MPROXY_SHUTDOWN_TIMEOUT]`,
      helpValue: 'DURATION',
    }),
    'redis-url': Flags.string({ description: 'Keep state in Redis (not available in this version) [default: none; env MPROXY_REDIS_URL]', helpValue: 'URL' }),
    debug: Flags.boolean({ description: 'Log debug lines too [default: false; env MPROXY_DEBUG]' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Run)
    const redisUrl = flags['redis-url'] ?? fromEnv(['MPROXY_REDIS_URL'])?.value
    if (redisUrl) throw new InvalidOptionError('--redis-url: Redis state is not available in this version of mproxy yet')
    const workersEnv = fromEnv(['MPROXY_WORKERS'])
    const workers = flags.workers ?? (workersEnv ? Number(workersEnv.value) : os.availableParallelism())
    if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
      throw new InvalidOptionError(`invalid ${flags.workers === undefined ? 'MPROXY_WORKERS' : '--workers'}: must be 1-256`)
    }
    const trusted = flags['trusted-proxy'] ?? fromEnv(['MPROXY_TRUSTED_PROXIES'])?.value.split(',') ?? []
    const shutdown = flags['shutdown-timeout'] ?? fromEnv(['MPROXY_SHUTDOWN_TIMEOUT'])?.value
    const debugEnv = fromEnv(['MPROXY_DEBUG'])?.value
    const debug = flags.debug || debugEnv === '1' || debugEnv === 'true'
    setDebug(debug)

    await startPrimary({
      httpPort: portOption('http-port', flags['http-port'], ['MPROXY_HTTP_PORT', 'HTTP_PORT'], DEFAULT_HTTP_PORT),
      httpsPort: portOption('https-port', flags['https-port'], ['MPROXY_HTTPS_PORT', 'HTTPS_PORT'], DEFAULT_HTTPS_PORT),
      workers,
      stateDir: this.stateDir(flags['state-dir']),
      trustedProxies: trusted.map((entry) => checkTrustedProxy(entry.trim())),
      shutdownTimeoutMs: shutdown === undefined ? DEFAULT_SHUTDOWN_TIMEOUT_MS : parseDuration(shutdown, 'shutdown timeout'),
      debug,
      version: this.config.version,
    })
  }

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<void> {
    await super.catch(err)
    // Workers may already have been forked: make sure nothing lingers.
    process.exit(process.exitCode ?? 1)
  }
}
