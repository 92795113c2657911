/**
 * How a node applies a change made through another node of the fleet, given the deployment the
 * registry prepared under the service's lock: what to do with the record, and the report sent
 * back to the node that made the change.
 */
import { formatDuration } from '../../lib/duration'
import { type ServiceSpec } from '../../options'
import { onlyStateDiffers } from '../../service-spec'
import { SHARED_HEALTH_WAIT_MS, type AppliedChange, type Progress } from '../fleet/peers'
import type { ServiceCertificates } from '../tls/service-certificates'
import { cutNote, type ChangeRules, type Deployment } from './deployment'
import { loadErrorPagesOrBuiltIn } from './error-page-files'
import type { Service } from './service'

/** Applies `spec` (a deploy, pause, stop or resume) or its removal (`undefined`) to `current`. */
export async function applySharedChange(
  deployment: Deployment, current: Service | undefined, spec: ServiceSpec | undefined, certificates: ServiceCertificates,
): Promise<AppliedChange> {
  if (!spec) {
    if (!current) return { summary: 'had nothing to remove', warning: false }
    const { durationMs, drained } = await deployment.remove(current)
    return { summary: `stopped routing and drained after ${formatDuration(durationMs)}${cutNote(drained)}`, warning: false }
  }
  // Redis came back empty and was written anew, or the same spec was redeployed: nothing to do,
  // unless the files of a provided certificate or of error pages may have been replaced.
  if (current && !spec.tlsCertificatePath && !spec.errorPagesPath && JSON.stringify(current.spec) === JSON.stringify(spec)) {
    return { summary: 'already served this', warning: false }
  }
  if (current && onlyStateDiffers(current.spec, spec)) {
    // The drain timeout a pause or stop was given is not saved: the service's own applies here.
    const { durationMs, drained } = await deployment.changeState(current, spec, spec.drainTimeoutMs)
    const drain = spec.state === 'running' ? '' : `, drained after ${formatDuration(durationMs)}${cutNote(drained)}`
    return { summary: `${spec.state === 'running' ? 'resumed' : spec.state}${drain}`, warning: false }
  }
  const certificate = certificates.restore(spec)
  const { pages, error } = await loadErrorPagesOrBuiltIn(spec.errorPagesPath)
  const { durationMs, drained, warnings } = await deployment.deploy(spec, certificate, pages)
  // Provided certificates and error pages must be at the same path on every node.
  if (error) warnings.push(`serves ${spec.name} with the built-in error pages: ${error}`)
  if (certificate.kind === 'provided' && certificate.error) warnings.push(`serves ${spec.name} over HTTP only: ${certificate.error}`)
  if (warnings.length > 0) return { summary: warnings.join('; '), warning: true }
  return { summary: `switched and drained after ${formatDuration(durationMs)}${cutNote(drained)}`, warning: false }
}

/** Nothing to tell: a change from the fleet reports its outcome, not its steps. */
const SILENT: Progress = () => {}

/**
 * The rules of a change from the fleet: the node that made it found the new targets healthy, so
 * they get traffic here too after a bounded wait (with a warning), and Redis's commit stands
 * whatever happens to the local copy `save` writes.
 */
export function sharedRules(save: () => Promise<number>): ChangeRules {
  return { progress: SILENT, healthWaitMs: SHARED_HEALTH_WAIT_MS, force: false, onUnhealthy: 'warn', save, undoUnsaved: false, awaitPeers: async () => {} }
}
