/**
 * Everything kamal-proxy has that mproxy does not: each flag concerned, in this one file. The
 * command line accepts and checks them all as kamal-proxy does; the translation (translate.ts)
 * then looks here for any flag whose value differs from kamal-proxy's default:
 *
 * - `refuse`: the command fails with one line (`--health-check-port is not supported by mproxy: ...`),
 *   nothing changed;
 * - `ignore`: accepted, and the proxy logs that it was not applied. Only for values that change
 *   nothing a client sees here.
 */
import type { DeployFlagName, RolloutDeployFlags, RunFlags } from './commands'

export interface Gap {
  why: string
  whenUsed: 'refuse' | 'ignore'
}

const unsupported = (why: string, whenUsed: 'refuse' | 'ignore' = 'refuse'): Gap => ({ why, whenUsed })

export const DEPLOY_FLAG_GAPS: Partial<Record<DeployFlagName, Gap>> = {
  'health-check-port': unsupported('health checks go to the target\'s own port'),
  'health-check-host': unsupported('health checks send the target\'s address as Host'),
  'tls-on-demand-url': unsupported('certificates are ordered for the --host names only'),
  'client-ip-header': unsupported('start the proxy with MPROXY_TRUSTED_PROXIES to trust the X-Forwarded-For of a proxy in front'),
  'tls-acme-cache-path': unsupported('certificates are kept in the data directory'),
}

export const ROLLOUT_DEPLOY_FLAG_GAPS: Partial<Record<keyof RolloutDeployFlags & string, Gap>> = {
  'read-target': unsupported('the rollout slot has no read targets; its targets get every request the split sends them'),
  // Replaced rollout targets drain for the service's --drain-timeout.
  'drain-timeout': unsupported('rollout targets drain for the drain timeout of the service\'s deploy', 'ignore'),
}

export const RUN_FLAG_GAPS: Partial<Record<keyof RunFlags & string, Gap>> = {
  http3: unsupported('Node serves no HTTP/3 (QUIC)'),
}

/** The one-line refusal of a flag: `--health-check-port is not supported by mproxy: ...`. */
export function refusal(subject: string, gap: Gap): string {
  return `${subject} is not supported by mproxy: ${gap.why}`
}

/** How an ignored flag is named in the proxy's log. */
export function ignoredNote(flag: string, gap: Gap): string {
  return `--${flag} (${gap.why})`
}
