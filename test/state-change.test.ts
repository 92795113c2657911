import { InvalidDurationError, InvalidOptionError, MproxyError } from '../src/errors'
import { type ServiceSpec } from '../src/options'
import { normalizeServiceSpec, onlyStateDiffers } from '../src/service-spec'
import { keptState, specAfter, type StateCommand, type StateRequest } from '../src/primary/deploys/state-change'

const RUNNING = normalizeServiceSpec({ name: 'web', targets: ['web:3000'] })
const PAUSED: ServiceSpec = { ...RUNNING, state: 'paused', maxPauseMs: 5_000 }
const STOPPED: ServiceSpec = { ...RUNNING, state: 'stopped', stopMessage: 'Back soon', maxPauseMs: 5_000 }

describe('specAfter', () => {
  it.each<[string, StateCommand, StateRequest, ServiceSpec, Partial<ServiceSpec> | undefined]>([
    ['pause with the default max pause', 'pause', {}, RUNNING, { state: 'paused', stopMessage: '', maxPauseMs: 30_000 }],
    ['pause with its own max pause', 'pause', { maxPauseMs: 2_000 }, RUNNING, { state: 'paused', maxPauseMs: 2_000 }],
    ['pause again, keeping the last max pause', 'pause', {}, PAUSED, { state: 'paused', maxPauseMs: 5_000 }],
    ['pause of a stopped service, dropping the message', 'pause', {}, STOPPED, { state: 'paused', stopMessage: '' }],
    ['stop with a message, keeping the max pause', 'stop', { message: 'Lunch' }, PAUSED, { state: 'stopped', stopMessage: 'Lunch', maxPauseMs: 5_000 }],
    ['stop without a message', 'stop', {}, STOPPED, { state: 'stopped', stopMessage: '' }],
    ['resume of a stopped service', 'resume', {}, STOPPED, { state: 'running', stopMessage: '', maxPauseMs: 5_000 }],
    ['resume of a running service: nothing to do', 'resume', {}, RUNNING, undefined],
  ])('%s', (_case, command, request, spec, expected) => {
    const after = specAfter(command, request, spec)
    if (expected === undefined) expect(after).toBeUndefined()
    else expect(after).toEqual({ ...spec, ...expected })
  })

  it.each<[string, StateRequest, typeof MproxyError]>([
    ['a zero max pause', { maxPauseMs: 0 }, InvalidOptionError],
    ['a max pause no timer can hold', { maxPauseMs: 2 ** 31 }, InvalidDurationError],
    ['a negative drain timeout', { drainTimeoutMs: -1 }, InvalidOptionError],
  ])('refuses %s', (_case, request, error) => {
    expect(() => specAfter('pause', request, RUNNING)).toThrow(error)
  })
})

describe('keptState', () => {
  it('keeps nothing of a running or new service', () => {
    expect(keptState(RUNNING)).toBeUndefined()
    expect(keptState(undefined)).toBeUndefined()
  })

  it.each([
    ['paused', PAUSED, { state: 'paused', stopMessage: '', maxPauseMs: 5_000 }],
    ['stopped', STOPPED, { state: 'stopped', stopMessage: 'Back soon', maxPauseMs: 5_000 }],
  ])('keeps a %s service so, and says so', (state, spec, fields) => {
    expect(keptState(spec)).toEqual({ fields, note: `web is ${state} and stays ${state} after this deploy (mproxy resume web serves it again)` })
  })
})

describe('onlyStateDiffers', () => {
  it.each([
    ['a stop', RUNNING, STOPPED, true],
    ['the same spec', RUNNING, RUNNING, true],
    ['another target', RUNNING, { ...RUNNING, targets: ['web:3001'] }, false],
    ['a stop with other pages', RUNNING, { ...STOPPED, errorPagesPath: '/srv/pages' }, false],
  ])('%s', (_case, a, b, same) => {
    expect(onlyStateDiffers(a, b)).toBe(same)
  })

  it('reads state saved by earlier versions as running', () => {
    expect(normalizeServiceSpec({ name: 'web', targets: ['web:3000'] })).toMatchObject({ state: 'running', stopMessage: '', maxPauseMs: 30_000 })
    expect(() => normalizeServiceSpec({ name: 'web', targets: ['web:3000'], state: 'asleep' })).toThrow(/^invalid service \(state\): /)
  })
})
