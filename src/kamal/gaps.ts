/**
 * Everything kamal-proxy has that mproxy does not, or not yet: each flag and command concerned,
 * in this one file. The command line accepts and checks them all as kamal-proxy does; the
 * translation (translate.ts) then looks here for any flag whose value differs from
 * kamal-proxy's default:
 *
 * - `refuse`: the command fails with one line (`--canonical-host is not supported yet`), nothing changed;
 * - `ignore`: accepted, and the proxy logs that it was not applied. Only for values that change
 *   nothing a client sees here, mostly because Kamal sends them on every deploy
 *   (`--buffer-requests --buffer-responses --log-request-header=...`).
 *
 * `pending` rows name the mproxy feature that is being built. When one lands, map its flags in
 * translate.ts and delete its rows here.
 */
import type { DeployFlagName, RolloutDeployFlags, RunFlags } from './commands'

export type PendingFeature =
  | 'canonical host redirects'
  | 'forwarded headers'
  | 'request log headers'

export type Gap =
  | { kind: 'pending'; feature: PendingFeature; whenUsed: 'refuse' | 'ignore' }
  | { kind: 'unsupported'; why: string; whenUsed: 'refuse' | 'ignore' }

const pending = (feature: PendingFeature, whenUsed: 'refuse' | 'ignore' = 'refuse'): Gap => ({ kind: 'pending', feature, whenUsed })
const unsupported = (why: string, whenUsed: 'refuse' | 'ignore' = 'refuse'): Gap => ({ kind: 'unsupported', why, whenUsed })

const NO_READ_TARGETS = 'read targets are not supported; every target gets every request'

export const DEPLOY_FLAG_GAPS: Partial<Record<DeployFlagName, Gap>> = {
  'canonical-host': pending('canonical host redirects'),
  'forward-headers': pending('forwarded headers'),
  // Kamal sends --log-request-header=Cache-Control,Last-Modified,User-Agent on every deploy.
  'log-request-header': pending('request log headers', 'ignore'),
  'log-response-header': pending('request log headers', 'ignore'),
  'read-target': unsupported(NO_READ_TARGETS),
  // Only about read targets, which are refused.
  'writer-affinity-timeout': unsupported(NO_READ_TARGETS, 'ignore'),
  'read-target-websockets': unsupported(NO_READ_TARGETS, 'ignore'),
  'health-check-port': unsupported('health checks go to the target\'s own port'),
  'health-check-host': unsupported('health checks send the target\'s address as Host'),
  'tls-on-demand-url': unsupported('certificates are ordered for the --host names only'),
  'client-ip-header': unsupported('start the proxy with MPROXY_TRUSTED_PROXIES to trust the X-Forwarded-For of a proxy in front'),
  'tls-acme-cache-path': unsupported('certificates are kept in the data directory'),
}

export const ROLLOUT_DEPLOY_FLAG_GAPS: Partial<Record<keyof RolloutDeployFlags & string, Gap>> = {
  'read-target': unsupported(NO_READ_TARGETS),
  // Replaced rollout targets drain for the service's --drain-timeout.
  'drain-timeout': unsupported('rollout targets drain for the drain timeout of the service\'s deploy', 'ignore'),
}

export const RUN_FLAG_GAPS: Partial<Record<keyof RunFlags & string, Gap>> = {
  http3: unsupported('Node serves no HTTP/3 (QUIC)'),
}

/** The one-line refusal of a flag: `--error-pages is not supported yet`. */
export function refusal(subject: string, gap: Gap): string {
  return gap.kind === 'pending' ? `${subject} is not supported yet` : `${subject} is not supported by mproxy: ${gap.why}`
}

/** How an ignored flag is named in the proxy's log. */
export function ignoredNote(flag: string, gap: Gap): string {
  return gap.kind === 'pending' ? `--${flag} (${gap.feature}: not in mproxy yet)` : `--${flag} (${gap.why})`
}
