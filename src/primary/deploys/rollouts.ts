/**
 * Canary releases of a service: `rollout deploy` fills the rollout slot (health-checked like a
 * deploy, replaced rollout targets drained), `rollout set` says which requests go there (by the
 * `kamal-rollout` cookie), `rollout stop` sends everyone back to the active targets while the
 * rollout targets stay up. Each is a change of the service's spec, saved and applied fleet-wide.
 */
import { InvalidOptionError, RolloutNotSetError } from '../../errors'
import { formatDuration } from '../../lib/duration'
import { normalizeDeployOptions, normalizeRolloutSplit } from '../../service-spec'
import type { RolloutDeployRequest, RolloutSetRequest, RolloutStopRequest } from '../../control/protocol'
import type { Progress } from '../fleet/peers'
import type { Registry } from './registry'

export async function rolloutDeploy(registry: Registry, request: RolloutDeployRequest, progress: Progress): Promise<string> {
  const options = normalizeDeployOptions({ deployTimeoutMs: request.deployTimeoutMs })
  const result = await registry.update(request.name, (spec) => ({
    ...spec,
    rollout: { targets: request.targets, split: spec.rollout?.split },
  }), options, progress)
  return result.unchanged
    ? `rollout targets of ${request.name} unchanged`
    : `deployed the rollout targets of ${request.name} in ${formatDuration(result.durationMs)}`
}

export async function rolloutSet(registry: Registry, request: RolloutSetRequest, progress: Progress): Promise<string> {
  if (request.percent === undefined && request.allowlist === undefined) throw new InvalidOptionError('give --percent, --list, or both')
  const split = normalizeRolloutSplit(request.percent ?? 0, request.allowlist ?? [])
  await registry.update(request.name, (spec) => {
    if (!spec.rollout) throw new RolloutNotSetError(`${spec.name} has no rollout targets: run mproxy rollout deploy ${spec.name} TARGET first`)
    return { ...spec, rollout: { targets: spec.rollout.targets, split } }
  }, normalizeDeployOptions({}), progress)
  const listed = split.allowlist.length > 0 ? ` and cookie values ${split.allowlist.join(', ')}` : ''
  return `${request.name}: ${split.percent}% of kamal-rollout cookie values${listed} go to the rollout targets`
}

export async function rolloutStop(registry: Registry, request: RolloutStopRequest, progress: Progress): Promise<string> {
  await registry.update(request.name, (spec) => (spec.rollout ? { ...spec, rollout: { targets: spec.rollout.targets } } : spec), normalizeDeployOptions({}), progress)
  return `${request.name}: every request goes to the active targets (the rollout targets stay up until the next rollout deploy or remove)`
}
