/**
 * kamal-proxy's commands and their flags, with its defaults. A table per command; what the
 * command line makes of them is in command-line.ts, what mproxy makes of that in translate.ts.
 */
import path from 'node:path'
import { parseGoBool, parseGoDecimal } from './go-values'
import { boolFlag, durationFlag, intFlag, listFlag, stringFlag, type FlagValues } from './flags'

const SECOND = 1_000_000_000n

/** What flag defaults depend on: the environment (`run`), the data directory (`deploy`). */
export interface KamalEnvironment {
  env: NodeJS.ProcessEnv
  dataDir: string
}

export const KAMAL_DEFAULTS = {
  deployTimeout: 30n * SECOND,
  drainTimeout: 30n * SECOND,
  healthCheckInterval: SECOND,
  healthCheckTimeout: 5n * SECOND,
  healthCheckPath: '/up',
  writerAffinityTimeout: SECOND,
  targetTimeout: 30n * SECOND,
  bufferMemory: 1_048_576,
  maxPause: 30n * SECOND,
  httpPort: 80,
  httpsPort: 443,
} as const

/** An environment value for a `run` flag: KAMAL_PROXY_<KEY>, else <KEY>; the first that exists wins. */
function fromEnv(env: NodeJS.ProcessEnv, key: string): string | undefined {
  return env[`KAMAL_PROXY_${key}`] ?? env[key]
}

/** A value that does not parse is ignored, and the built-in default applies. */
function envInt(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const text = fromEnv(env, key)
  return (text === undefined ? undefined : parseGoDecimal(text)) ?? fallback
}

function envBool(env: NodeJS.ProcessEnv, key: string, fallback: boolean): boolean {
  const text = fromEnv(env, key)
  if (text === undefined) return fallback
  try {
    return parseGoBool(text)
  } catch {
    return fallback
  }
}

export const runFlags = ({ env }: KamalEnvironment) => ({
  debug: boolFlag('Include debugging logs', envBool(env, 'DEBUG', false)),
  'http-port': intFlag('Port to serve HTTP traffic on', envInt(env, 'HTTP_PORT', KAMAL_DEFAULTS.httpPort)),
  'https-port': intFlag('Port to serve HTTPS traffic on', envInt(env, 'HTTPS_PORT', KAMAL_DEFAULTS.httpsPort)),
  'metrics-port': intFlag('Publish metrics on the specified port (default zero to disable)', envInt(env, 'METRICS_PORT', 0)),
  http3: boolFlag('Enable HTTP/3'),
})

export const deployFlags = ({ dataDir }: KamalEnvironment) => ({
  target: listFlag('Target host(s) to deploy'),
  'read-target': listFlag('Read-only target host(s) to deploy'),
  host: listFlag('Host(s) to serve this target on (empty for wildcard)'),
  'path-prefix': listFlag('Deploy the service below the specified path(s)'),
  'strip-path-prefix': boolFlag('With --path-prefix, strip prefix from request before forwarding', true),
  tls: boolFlag('Configure TLS for this target (requires a non-empty host)'),
  'tls-on-demand-url': stringFlag('Will make an HTTP request to the given URL, asking whether a host is allowed to have a certificate issued'),
  'tls-staging': boolFlag("Use Let's Encrypt staging environment for certificate provisioning"),
  'tls-certificate-path': stringFlag('Configure custom TLS certificate path (PEM format)'),
  'tls-private-key-path': stringFlag('Configure custom TLS private key path (PEM format)'),
  'tls-acme-cache-path': stringFlag('Location to store ACME assets', path.join(dataDir, 'certs')),
  'tls-redirect': boolFlag('Redirect HTTP traffic to HTTPS', true),
  'canonical-host': stringFlag('Redirect all requests to this host (e.g., force root or www)'),
  'deploy-timeout': durationFlag('Maximum time to wait for the new target to become healthy', KAMAL_DEFAULTS.deployTimeout),
  'drain-timeout': durationFlag('Maximum time to allow existing connections to drain before removing old target', KAMAL_DEFAULTS.drainTimeout),
  force: boolFlag('Skip health checks and force deployment'),
  'health-check-interval': durationFlag('Interval between health checks', KAMAL_DEFAULTS.healthCheckInterval),
  'health-check-timeout': durationFlag('Time each health check must complete in', KAMAL_DEFAULTS.healthCheckTimeout),
  'health-check-path': stringFlag('Path to check for health', KAMAL_DEFAULTS.healthCheckPath),
  'health-check-port': intFlag('Port to check for health (default matches target port)'),
  'health-check-host': stringFlag('Host header to send with health check requests'),
  'writer-affinity-timeout': durationFlag('Time after a write before read requests will be routed to readers', KAMAL_DEFAULTS.writerAffinityTimeout),
  'read-target-websockets': boolFlag('Route WebSocket traffic to read targets, when available'),
  'target-timeout': durationFlag('Maximum time to wait for the target server to respond when serving requests', KAMAL_DEFAULTS.targetTimeout),
  'buffer-requests': boolFlag('Buffer requests before forwarding to target'),
  'buffer-responses': boolFlag('Buffer responses before forwarding to client'),
  'buffer-memory': intFlag('Max size of memory buffer', KAMAL_DEFAULTS.bufferMemory),
  'max-request-body': intFlag('Max size of request body when buffering (default of 0 means unlimited)'),
  'max-response-body': intFlag('Max size of response body when buffering (default of 0 means unlimited)'),
  'error-pages': stringFlag('Path to custom error pages'),
  'log-request-header': listFlag('Additional request header to log (may be specified multiple times)'),
  'log-response-header': listFlag('Additional response header to log (may be specified multiple times)'),
  'exclude-metrics-path': listFlag('Request path(s) to exclude from Prometheus metrics (may be specified multiple times)'),
  'forward-headers': boolFlag('Forward X-Forwarded headers to target (default false if TLS enabled; otherwise true)'),
  'client-ip-header': stringFlag('Request header containing the original client IP; used to populate X-Forwarded-For when present'),
  'scope-cookie-paths': boolFlag('Scope cookie paths to match path prefix'),
})

export const pauseFlags = () => ({
  'drain-timeout': durationFlag('How long to allow in-flight requests to complete', KAMAL_DEFAULTS.drainTimeout),
  'max-pause': durationFlag('How long to enqueue requests before shedding load', KAMAL_DEFAULTS.maxPause),
})

export const stopFlags = () => ({
  'drain-timeout': durationFlag('How long to allow in-flight requests to complete', KAMAL_DEFAULTS.drainTimeout),
  message: stringFlag('Message to display to clients while stopped'),
})

export const rolloutDeployFlags = () => ({
  target: listFlag('Target host(s) to deploy'),
  'read-target': listFlag('Read-only target host(s) to deploy'),
  'deploy-timeout': durationFlag('Maximum time to wait for the new target to become healthy', KAMAL_DEFAULTS.deployTimeout),
  'drain-timeout': durationFlag('Maximum time to allow existing connections to drain before removing old target', KAMAL_DEFAULTS.drainTimeout),
})

export const rolloutSetFlags = () => ({
  percent: intFlag('Percentage of traffic to send to the new target'),
  list: listFlag('Rollout to specific values'),
})

export type RunFlags = FlagValues<ReturnType<typeof runFlags>>
export type DeployFlags = FlagValues<ReturnType<typeof deployFlags>>
export type DeployFlagName = keyof DeployFlags & string
export type PauseFlags = FlagValues<ReturnType<typeof pauseFlags>>
export type StopFlags = FlagValues<ReturnType<typeof stopFlags>>
export type RolloutDeployFlags = FlagValues<ReturnType<typeof rolloutDeployFlags>>
export type RolloutSetFlags = FlagValues<ReturnType<typeof rolloutSetFlags>>

/** A command line, parsed and checked as kamal-proxy checks it before it calls the server. */
export type KamalCommand =
  | { name: 'help'; text: string }
  | { name: 'run'; flags: RunFlags }
  | { name: 'deploy'; service: string; flags: DeployFlags; changed: ReadonlySet<DeployFlagName> }
  | { name: 'remove'; service: string }
  | { name: 'list' }
  | { name: 'pause'; service: string; flags: PauseFlags }
  | { name: 'stop'; service: string; flags: StopFlags }
  | { name: 'resume'; service: string }
  | { name: 'rollout deploy'; service: string; flags: RolloutDeployFlags }
  | { name: 'rollout set'; service: string; flags: RolloutSetFlags }
  | { name: 'rollout stop'; service: string }
