/**
 * One schema per control-socket request: what arrives over the socket is checked here, before
 * any handler sees it, and a malformed request gets one readable line. The meaning of the
 * values (is this a host name, a duration a timer can hold?) is checked further in, where the
 * same rules apply to every source (service-spec.ts).
 */
import * as v from 'valibot'
import { parseWith } from '../lib/schema'
import { SERVICE_OPTION_FIELDS } from '../service-spec'
import type {
  CommitRequest, DeployRequest, PauseRequest, PrepareRequest, RemoveRequest, ResumeRequest, RolloutDeployRequest, RolloutSetRequest,
  RolloutStopRequest, StopRequest,
} from './protocol'

const milliseconds = v.optional(v.pipe(v.number(), v.finite(), v.minValue(0)))
const text = v.optional(v.string())
const bytes = v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)))

export const DEPLOY_REQUEST = v.strictObject({
  ...SERVICE_OPTION_FIELDS,
  targets: v.pipe(v.array(v.string()), v.minLength(1, 'at least one target (host:port) is required')),
  hosts: v.array(v.string()),
  name: text,
  writerAffinityTimeoutMs: milliseconds,
  healthCheck: v.strictObject({ path: text, intervalMs: milliseconds, timeoutMs: milliseconds }),
  deployTimeoutMs: milliseconds,
  drainTimeoutMs: milliseconds,
  targetTimeoutMs: milliseconds,
  force: v.optional(v.boolean()),
  ignoredOptions: v.optional(v.array(v.string())),
  buffering: v.optional(v.strictObject({
    requests: v.optional(v.boolean()),
    responses: v.optional(v.boolean()),
    memoryBytes: bytes,
    maxRequestBodyBytes: bytes,
    maxResponseBodyBytes: bytes,
  })),
}) satisfies v.GenericSchema<unknown, DeployRequest>

export const ROLLOUT_DEPLOY_REQUEST = v.strictObject({
  name: v.string(),
  targets: v.pipe(v.array(v.string()), v.minLength(1, 'at least one rollout target (host:port) is required')),
  deployTimeoutMs: milliseconds,
  ignoredOptions: v.optional(v.array(v.string())),
}) satisfies v.GenericSchema<unknown, RolloutDeployRequest>

export const ROLLOUT_SET_REQUEST = v.strictObject({
  name: v.string(),
  percent: v.optional(v.number()),
  allowlist: v.optional(v.array(v.string())),
}) satisfies v.GenericSchema<unknown, RolloutSetRequest>

export const ROLLOUT_STOP_REQUEST = v.strictObject({ name: v.string() }) satisfies v.GenericSchema<unknown, RolloutStopRequest>

const selector = { name: text, host: text }
export const REMOVE_REQUEST = v.strictObject(selector) satisfies v.GenericSchema<unknown, RemoveRequest>
export const PAUSE_REQUEST = v.strictObject({ ...selector, drainTimeoutMs: milliseconds, maxPauseMs: milliseconds }) satisfies v.GenericSchema<unknown, PauseRequest>
export const STOP_REQUEST = v.strictObject({ ...selector, drainTimeoutMs: milliseconds, message: text }) satisfies v.GenericSchema<unknown, StopRequest>
export const RESUME_REQUEST = v.strictObject(selector) satisfies v.GenericSchema<unknown, ResumeRequest>

const pid = v.pipe(v.number(), v.integer(), v.minValue(1))
export const PREPARE_REQUEST = v.strictObject({ pid, version: v.string() }) satisfies v.GenericSchema<unknown, PrepareRequest>
export const COMMIT_REQUEST = v.strictObject({ pid }) satisfies v.GenericSchema<unknown, CommitRequest>

/** The request, or an InvalidOptionError naming the first problem and where it is. */
export function parseRequest<T>(schema: v.GenericSchema<unknown, T>, what: string, body: unknown): T {
  return parseWith(schema, `${what} request`, body)
}
