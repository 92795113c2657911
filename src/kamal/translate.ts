/**
 * kamal-proxy commands as mproxy control requests: pure functions from a parsed command (and
 * what the proxy already has, where a command depends on it) to a request, or to a one-line
 * refusal when the command asks for something mproxy lacks (see gaps.ts).
 */
import path from 'node:path'
import type {
  DeployRequest, PauseRequest, RemoveRequest, ResumeRequest, RolloutDeployRequest, RolloutSetRequest, RolloutStopRequest, ServiceStatus, StopRequest,
} from '../control/protocol'
import { LETS_ENCRYPT_STAGING_DIRECTORY } from '../options'
import { deployFlags, rolloutDeployFlags, runFlags, type KamalCommand, type KamalEnvironment, type RunFlags } from './commands'
import { CommandLineError, defaultsOf } from './flags'
import { DEPLOY_FLAG_GAPS, ROLLOUT_DEPLOY_FLAG_GAPS, RUN_FLAG_GAPS, ignoredNote, refusal, type Gap } from './gaps'
import { nanosToMs } from './go-values'
import { normalizeKamalPathPrefixes } from './service-options'

type Command<N extends KamalCommand['name']> = Extract<KamalCommand, { name: N }>

/** What a deploy may depend on besides its command line. */
export interface DeployContext {
  /** Where the command runs: the default of --tls-acme-cache-path. */
  environment: KamalEnvironment
  /** The services the proxy has: a path-prefixed service takes the TLS settings of its host's root service. */
  services: readonly ServiceStatus[]
  /** The ACME directory the proxy orders certificates from (needed with --tls-staging). */
  acmeDirectory?: string
}

/** What translateDeploy needs to know from the proxy first. */
export function deployNeeds({ flags }: Command<'deploy'>): { services: boolean; acmeDirectory: boolean } {
  return {
    services: flags.host.length > 0 && !normalizeKamalPathPrefixes(flags['path-prefix']).includes('/'),
    acmeDirectory: flags.tls && flags['tls-staging'],
  }
}

export function translateDeploy(command: Command<'deploy'>, context: DeployContext): DeployRequest {
  const { flags } = command
  const ignoredOptions = checkGaps(flags, defaultsOf(deployFlags(context.environment)), DEPLOY_FLAG_GAPS)
  const hosts = flags.host
  const pathPrefixes = normalizeKamalPathPrefixes(flags['path-prefix'])
  const tls = pathPrefixes.includes('/') ? ownTls(flags, context) : inheritedTls(hosts, context.services)
  return {
    name: command.service,
    targets: flags.target.map(translateTarget),
    readTargets: flags['read-target'].map(translateTarget),
    writerAffinityTimeoutMs: nanosToMs(flags['writer-affinity-timeout']),
    readTargetWebSockets: flags['read-target-websockets'],
    hosts,
    pathPrefixes,
    stripPathPrefix: flags['strip-path-prefix'],
    scopeCookiePaths: flags['scope-cookie-paths'],
    ...tls,
    // The proxy reads the pages: a relative path means this command's directory.
    ...(flags['error-pages'] !== '' && { errorPagesPath: path.resolve(flags['error-pages']) }),
    ...(flags['exclude-metrics-path'].length > 0 && { excludeMetricsPaths: flags['exclude-metrics-path'] }),
    ...(flags['canonical-host'] !== '' && { canonicalHost: flags['canonical-host'] }),
    forwardHeaders: flags['forward-headers'],
    logRequestHeaders: flags['log-request-header'],
    logResponseHeaders: flags['log-response-header'],
    buffering: {
      requests: flags['buffer-requests'],
      responses: flags['buffer-responses'],
      memoryBytes: Number(flags['buffer-memory']),
      maxRequestBodyBytes: Number(flags['max-request-body']),
      maxResponseBodyBytes: Number(flags['max-response-body']),
    },
    healthCheck: {
      // kamal-proxy joins a relative path to the target's URL.
      path: flags['health-check-path'].startsWith('/') ? flags['health-check-path'] : `/${flags['health-check-path']}`,
      intervalMs: nanosToMs(flags['health-check-interval']),
      timeoutMs: nanosToMs(flags['health-check-timeout']),
    },
    deployTimeoutMs: nanosToMs(flags['deploy-timeout']),
    drainTimeoutMs: nanosToMs(flags['drain-timeout']),
    targetTimeoutMs: nanosToMs(flags['target-timeout']),
    force: flags.force,
    ...(ignoredOptions.length > 0 && { ignoredOptions }),
  }
}

export function translateRolloutDeploy(command: Command<'rollout deploy'>): RolloutDeployRequest {
  const ignoredOptions = checkGaps(command.flags, defaultsOf(rolloutDeployFlags()), ROLLOUT_DEPLOY_FLAG_GAPS)
  return {
    name: command.service,
    targets: command.flags.target.map(translateTarget),
    deployTimeoutMs: nanosToMs(command.flags['deploy-timeout']),
    ...(ignoredOptions.length > 0 && { ignoredOptions }),
  }
}

/** kamal-proxy does not bound the percentage: below 0 sends nobody, 100 and above everybody. */
export function translateRolloutSet(command: Command<'rollout set'>): RolloutSetRequest {
  return { name: command.service, percent: Math.min(100, Math.max(0, command.flags.percent)), allowlist: command.flags.list }
}

export function translateRolloutStop(command: Command<'rollout stop'>): RolloutStopRequest {
  return { name: command.service }
}

export function translateRemove(command: Command<'remove'>): RemoveRequest {
  return { name: command.service }
}

/** kamal-proxy's drain timeout and max pause default to 30 s each: sent, not left to mproxy's defaults. */
export function translatePause(command: Command<'pause'>): PauseRequest {
  return { name: command.service, drainTimeoutMs: nanosToMs(command.flags['drain-timeout']), maxPauseMs: nanosToMs(command.flags['max-pause']) }
}

export function translateStop(command: Command<'stop'>): StopRequest {
  return { name: command.service, drainTimeoutMs: nanosToMs(command.flags['drain-timeout']), message: command.flags.message }
}

export function translateResume(command: Command<'resume'>): ResumeRequest {
  return { name: command.service }
}

/** The ports, metrics port (0: none) and log level of `run`, or a refusal of what mproxy cannot serve. */
export function translateRun(flags: RunFlags): { httpPort: number; httpsPort: number; metricsPort: number; debug: boolean } {
  checkGaps(flags, defaultsOf(runFlags({ env: {}, dataDir: '' })), RUN_FLAG_GAPS)
  return { httpPort: flags['http-port'], httpsPort: flags['https-port'], metricsPort: flags['metrics-port'], debug: flags.debug }
}

/**
 * `host[:port]` as kamal-proxy accepts it (a word character, then at least one more of word
 * characters, `-`, `.`, `+`), with its default port 80 made explicit for mproxy.
 */
export function translateTarget(target: string): string {
  const match = /^(\w[-_.\w+]+)(:\d+)?$/.exec(target)
  if (!match) throw new CommandLineError(`${target} :invalid host pattern`)
  return match[2] ? target : `${target}:80`
}

type TlsFields = Pick<DeployRequest, 'tls' | 'tlsRedirect' | 'tlsCertificatePath' | 'tlsPrivateKeyPath'>

/** A root service's own TLS settings. */
function ownTls(flags: Command<'deploy'>['flags'], context: DeployContext): TlsFields {
  if (!flags.tls) return { tls: false }
  const certificate = flags['tls-certificate-path']
  if (certificate === '') {
    if (flags.host.some((host) => host.includes('*'))) throw new CommandLineError('automatic TLS does not support wildcards')
    if (flags['tls-staging'] && context.acmeDirectory !== LETS_ENCRYPT_STAGING_DIRECTORY) {
      throw new CommandLineError('--tls-staging needs the proxy started with MPROXY_ACME_STAGING=true: mproxy orders all certificates from one ACME directory')
    }
    return { tls: true, tlsRedirect: flags['tls-redirect'] }
  }
  // The proxy reads the files: a relative path means this command's directory.
  return {
    tls: true,
    tlsRedirect: flags['tls-redirect'],
    tlsCertificatePath: path.resolve(certificate),
    tlsPrivateKeyPath: path.resolve(flags['tls-private-key-path']),
  }
}

/** A path-prefixed service serves its host with the TLS settings of the host's root service, if there is one. */
function inheritedTls(hosts: readonly string[], services: readonly ServiceStatus[]): TlsFields {
  if (hosts.length === 0) return { tls: false }
  const root = services.find((service) => service.pathPrefixes.includes('/') && service.hosts.includes(hosts[0].toLowerCase()))
  if (!root?.tls) return { tls: false }
  return {
    tls: true,
    tlsRedirect: root.tlsRedirect,
    ...(root.tlsCertificatePath !== undefined && { tlsCertificatePath: root.tlsCertificatePath, tlsPrivateKeyPath: root.tlsPrivateKeyPath }),
  }
}

/**
 * Refuses the first flag of `table` given a value other than kamal-proxy's default, unless its
 * row says to ignore it; returns the ignored ones, for the proxy's log.
 */
function checkGaps<F extends Record<string, unknown>>(flags: F, defaults: F, table: Partial<Record<keyof F & string, Gap>>): string[] {
  const ignored: string[] = []
  for (const [flag, gap] of Object.entries(table) as [keyof F & string, Gap][]) {
    if (sameValue(flags[flag], defaults[flag])) continue
    if (gap.whenUsed === 'refuse') throw new CommandLineError(refusal(`--${flag}`, gap))
    ignored.push(ignoredNote(flag, gap))
  }
  return ignored
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => item === b[i])
  return a === b
}
