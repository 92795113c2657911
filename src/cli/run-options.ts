/**
 * The options of `mproxy run` in one table, read by the oclif command (help, parsing) and by
 * the direct entry that starts the primary without loading oclif. `resolveRunOptions` applies
 * the environment and validates, the same way for both.
 */
import os from 'node:os'
import path from 'node:path'
import { isIP } from 'node:net'
import { SOCKET_NAME } from '../control/protocol'
import { InvalidOptionError } from '../errors'
import { formatDuration, parseDuration } from '../lib/duration'
import { resolveStateDir } from '../lib/state-dir'
import {
  DEFAULT_ACME_CHECK_INTERVAL_MS, DEFAULT_ACME_RETRY_BASE_MS, DEFAULT_HTTP_PORT, DEFAULT_HTTPS_PORT, DEFAULT_REDIS_PREFIX,
  DEFAULT_RESPONSE_IDLE_TIMEOUT_MS, DEFAULT_SHUTDOWN_TIMEOUT_MS, LETS_ENCRYPT_DIRECTORY, LETS_ENCRYPT_STAGING_DIRECTORY,
} from '../options'
import type { ServerOptions } from '../server-options'

interface RunFlagSpec {
  type: 'integer' | 'string' | 'boolean'
  multiple?: boolean
  /** Environment variables read when the flag is not given, first match wins. */
  env: readonly string[]
  summary: string
  defaultText: string
  helpValue?: string
}

export const RUN_FLAGS = {
  'http-port': { type: 'integer', env: ['MPROXY_HTTP_PORT', 'HTTP_PORT'], summary: 'Port for HTTP; 0 picks a free port', defaultText: `${DEFAULT_HTTP_PORT}` },
  'https-port': { type: 'integer', env: ['MPROXY_HTTPS_PORT', 'HTTPS_PORT'], summary: 'Port for HTTPS, once TLS is enabled', defaultText: `${DEFAULT_HTTPS_PORT}` },
  'metrics-port': {
    type: 'string', env: ['MPROXY_METRICS_PORT', 'METRICS_PORT'], helpValue: 'PORT|auto', defaultText: '0: off',
    summary: 'Serve Prometheus metrics at /metrics on this port, on all interfaces; auto picks a free port (see mproxy status)',
  },
  workers: { type: 'integer', env: ['MPROXY_WORKERS'], summary: 'Worker processes that proxy requests', defaultText: 'one per CPU' },
  'trusted-proxy': {
    type: 'string', multiple: true, env: ['MPROXY_TRUSTED_PROXIES'], helpValue: 'CIDR', defaultText: 'none',
    summary: 'Address or CIDR of a proxy in front of mproxy whose X-Forwarded-* headers are kept; repeatable (env: comma-separated)',
  },
  'shutdown-timeout': {
    type: 'string', env: ['MPROXY_SHUTDOWN_TIMEOUT'], helpValue: 'DURATION', defaultText: formatDuration(DEFAULT_SHUTDOWN_TIMEOUT_MS),
    summary: 'How long SIGTERM waits for in-flight requests before cutting them',
  },
  'response-idle-timeout': {
    type: 'string', env: ['MPROXY_RESPONSE_IDLE_TIMEOUT'], helpValue: 'DURATION', defaultText: formatDuration(DEFAULT_RESPONSE_IDLE_TIMEOUT_MS),
    summary: 'Cut a response (closing the client connection) when its upstream sends nothing for this long; streams should send more often',
  },
  'state-dir': {
    type: 'string', env: ['MPROXY_STATE_DIR'], helpValue: 'DIR', defaultText: '$XDG_STATE_HOME/mproxy, else ~/.local/state/mproxy',
    summary: 'Directory of the control socket and state',
  },
  'acme-directory': {
    type: 'string', env: ['MPROXY_ACME_DIRECTORY'], helpValue: 'URL', defaultText: "Let's Encrypt",
    summary: 'ACME directory that issues automatic certificates (extra trusted CAs: NODE_EXTRA_CA_CERTS)',
  },
  'acme-staging': { type: 'boolean', env: ['MPROXY_ACME_STAGING'], defaultText: 'false', summary: "Use Let's Encrypt's staging directory (untrusted certificates, generous limits)" },
  'acme-email': { type: 'string', env: ['MPROXY_ACME_EMAIL'], helpValue: 'EMAIL', defaultText: 'none', summary: 'Contact address for the ACME account' },
  'redis-url': {
    type: 'string', env: ['MPROXY_REDIS_URL'], helpValue: 'URL', defaultText: 'none: state in the state dir only',
    summary: 'Keep the state in Redis (redis://[:password@]host:6379/0 or unix:///path.sock), with a copy in the state dir',
  },
  'redis-prefix': { type: 'string', env: ['MPROXY_REDIS_PREFIX'], helpValue: 'PREFIX', defaultText: DEFAULT_REDIS_PREFIX, summary: 'Namespace of the Redis keys, so several fleets can share one Redis' },
  'node-name': {
    type: 'string', env: ['MPROXY_NODE_NAME'], helpValue: 'NAME', defaultText: 'HOSTNAME:HTTP_PORT (HOSTNAME:pidPID with --http-port 0)',
    summary: "This proxy's name in the fleet sharing its Redis, shown by list and deploy",
  },
  'access-log': {
    type: 'string', env: ['MPROXY_ACCESS_LOG'], helpValue: 'true|false', defaultText: 'true',
    summary: 'Log one JSON line per request; false saves about a tenth of the CPU a request costs',
  },
  debug: { type: 'boolean', env: ['MPROXY_DEBUG'], defaultText: 'false', summary: 'Log debug lines too' },
} as const satisfies Record<string, RunFlagSpec>

export type RunFlagName = keyof typeof RUN_FLAGS

/** Parsed flags, before the environment and defaults apply. */
export interface RunFlags {
  'http-port'?: number
  'https-port'?: number
  'metrics-port'?: string
  workers?: number
  'trusted-proxy'?: string[]
  'shutdown-timeout'?: string
  'response-idle-timeout'?: string
  'state-dir'?: string
  'acme-directory'?: string
  'acme-staging'?: boolean
  'acme-email'?: string
  'redis-url'?: string
  'redis-prefix'?: string
  'node-name'?: string
  'access-log'?: string
  debug?: boolean
}

/** Help text of one flag: what it does, its default and its environment variables. */
export function describeRunFlag(name: RunFlagName): string {
  const spec: RunFlagSpec = RUN_FLAGS[name]
  return `${spec.summary} [default: ${spec.defaultText}; env ${spec.env.join(', ')}]`
}

/** An explicit flag beats MPROXY_<NAME>, which beats the plain name kamal-proxy also reads. */
function fromEnv(name: RunFlagName, env: NodeJS.ProcessEnv): { source: string; value: string } | undefined {
  for (const variable of RUN_FLAGS[name].env) {
    const value = env[variable]
    if (value !== undefined && value !== '') return { source: variable, value }
  }
  return undefined
}

function integerOption(name: RunFlagName, flags: RunFlags, env: NodeJS.ProcessEnv, min: number, max: number): number | undefined {
  const flag = flags[name] as number | undefined
  const fallback = fromEnv(name, env)
  const [value, source] = flag !== undefined ? [flag, `--${name}`] : fallback ? [Number(fallback.value), fallback.source] : [undefined, '']
  if (value === undefined) return undefined
  if (!Number.isInteger(value) || value < min || value > max) throw new InvalidOptionError(`invalid ${source}: must be a whole number from ${min} to ${max}`)
  return value
}

/** `0` (off) → undefined; `auto` → 0, a port the system picks. */
function metricsPort(flags: RunFlags, env: NodeJS.ProcessEnv): number | undefined {
  const fallback = fromEnv('metrics-port', env)
  const [value, source] = flags['metrics-port'] !== undefined ? [flags['metrics-port'], '--metrics-port'] : [fallback?.value, fallback?.source]
  if (value === undefined || value === '0') return undefined
  if (value === 'auto') return 0
  const port = Number(value)
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidOptionError(`invalid ${source}: expected a port from 0 (off) to 65535, or auto`)
  return port
}

function isTrue(value: string | undefined): boolean {
  return value === '1' || value === 'true'
}

function checkTrustedProxy(entry: string): string {
  const [address, prefix, extra] = entry.split('/')
  const family = isIP(address)
  const bits = family === 6 ? 128 : 32
  const validPrefix = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= bits)
  if (!family || extra !== undefined || !validPrefix) {
    throw new InvalidOptionError(`invalid trusted proxy "${entry}": expected an IP address or CIDR like 10.0.0.0/8`)
  }
  return entry
}

export function resolveRunOptions(flags: RunFlags, version: string, env: NodeJS.ProcessEnv = process.env): ServerOptions {
  const redisUrl = flags['redis-url'] ?? fromEnv('redis-url', env)?.value
  if (redisUrl !== undefined && !/^(rediss?:\/\/|unix:\/\/\/)/.test(redisUrl)) {
    throw new InvalidOptionError(`invalid Redis URL "${redisUrl}": expected redis://host:6379/0 or unix:///path/to/redis.sock`)
  }
  const trusted = flags['trusted-proxy'] ?? fromEnv('trusted-proxy', env)?.value.split(',') ?? []
  const shutdown = flags['shutdown-timeout'] ?? fromEnv('shutdown-timeout', env)?.value
  const responseIdle = flags['response-idle-timeout'] ?? fromEnv('response-idle-timeout', env)?.value
  const debugEnv = fromEnv('debug', env)?.value
  const staging = flags['acme-staging'] === true || isTrue(fromEnv('acme-staging', env)?.value)
  const directoryUrl = flags['acme-directory'] ?? fromEnv('acme-directory', env)?.value ??
    (staging ? LETS_ENCRYPT_STAGING_DIRECTORY : LETS_ENCRYPT_DIRECTORY)
  if (!/^https?:\/\//.test(directoryUrl)) throw new InvalidOptionError(`invalid ACME directory "${directoryUrl}": expected an https:// URL`)
  const httpPort = integerOption('http-port', flags, env, 0, 65535) ?? DEFAULT_HTTP_PORT
  const nodeName = flags['node-name'] ?? fromEnv('node-name', env)?.value ?? `${os.hostname()}:${httpPort === 0 ? `pid${process.pid}` : httpPort}`
  if (!/^[\w.:@-]{1,100}$/.test(nodeName)) {
    throw new InvalidOptionError(`invalid node name "${nodeName}": use up to 100 letters, digits and . _ : @ -`)
  }
  const accessLog = flags['access-log'] ?? fromEnv('access-log', env)?.value ?? 'true'
  if (accessLog !== 'true' && accessLog !== 'false') throw new InvalidOptionError(`invalid access log setting "${accessLog}": expected true or false`)
  const stateDir = resolveStateDir(flags['state-dir'], env)
  const durationFromEnv = (variable: string, fallback: number) => (env[variable] ? parseDuration(env[variable] as string, variable) : fallback)
  return {
    httpPort,
    httpsPort: integerOption('https-port', flags, env, 0, 65535) ?? DEFAULT_HTTPS_PORT,
    metricsPort: metricsPort(flags, env),
    workers: integerOption('workers', flags, env, 1, 256) ?? os.availableParallelism(),
    stateDir,
    socketPath: path.join(stateDir, SOCKET_NAME),
    trustedProxies: trusted.map((entry) => checkTrustedProxy(entry.trim())),
    shutdownTimeoutMs: shutdown === undefined ? DEFAULT_SHUTDOWN_TIMEOUT_MS : parseDuration(shutdown, 'shutdown timeout'),
    responseIdleTimeoutMs: responseIdle === undefined ? DEFAULT_RESPONSE_IDLE_TIMEOUT_MS : parseDuration(responseIdle, 'response idle timeout'),
    debug: flags.debug === true || isTrue(debugEnv),
    accessLog: accessLog === 'true',
    redis: redisUrl === undefined ? undefined : {
      url: redisUrl,
      prefix: flags['redis-prefix'] ?? fromEnv('redis-prefix', env)?.value ?? DEFAULT_REDIS_PREFIX,
      node: nodeName,
    },
    acme: {
      directoryUrl,
      email: flags['acme-email'] ?? fromEnv('acme-email', env)?.value,
      // Not flags: only tests and unusual CAs need them.
      retryBaseMs: durationFromEnv('MPROXY_ACME_RETRY_BASE', DEFAULT_ACME_RETRY_BASE_MS),
      checkIntervalMs: durationFromEnv('MPROXY_ACME_CHECK_INTERVAL', DEFAULT_ACME_CHECK_INTERVAL_MS),
    },
    version,
  }
}
