/**
 * What `pause`, `stop` and `resume` make of a service's spec, and what a redeploy keeps of its
 * state: pure functions over specs, for the registry to apply.
 */
import type { PauseRequest, StopRequest } from '../../control/protocol'
import { type ServiceSpec, type ServiceStateFields } from '../../options'
import { checkStateChange, normalizeServiceSpec } from '../../service-spec'

export type StateCommand = 'pause' | 'stop' | 'resume'

/** Any of the three requests: each command reads its own fields. */
export type StateRequest = PauseRequest & StopRequest

/**
 * The spec after the command, or undefined when it changes nothing (resuming a running
 * service). A stop keeps the max pause, a pause clears the stop message. Throws a one-line
 * error on a bad duration.
 */
export function specAfter(command: StateCommand, request: StateRequest, spec: ServiceSpec): ServiceSpec | undefined {
  checkStateChange(request.drainTimeoutMs, request.maxPauseMs)
  if (command === 'resume' && spec.state === 'running') return undefined
  const fields: ServiceStateFields = command === 'pause'
    ? { state: 'paused', stopMessage: '', maxPauseMs: request.maxPauseMs ?? spec.maxPauseMs }
    : command === 'stop'
      ? { state: 'stopped', stopMessage: request.message ?? '', maxPauseMs: spec.maxPauseMs }
      : { state: 'running', stopMessage: '', maxPauseMs: spec.maxPauseMs }
  return normalizeServiceSpec({ ...spec, ...fields })
}

/**
 * What a redeploy keeps of the current spec's state (a paused or stopped service stays so), and
 * the line that says so; nothing for a running or new service.
 */
export function keptState(current: ServiceSpec | undefined): { fields: ServiceStateFields; note: string } | undefined {
  if (!current || current.state === 'running') return undefined
  const { name, state, stopMessage, maxPauseMs } = current
  return {
    fields: { state, stopMessage, maxPauseMs },
    note: `${name} is ${state} and stays ${state} after this deploy (mproxy resume ${name} serves it again)`,
  }
}
