import { InvalidOptionError } from '../src/errors'
import { DEPLOY_REQUEST, PAUSE_REQUEST, REMOVE_REQUEST, RESUME_REQUEST, STOP_REQUEST, parseRequest } from '../src/control/schemas'

const DEPLOY = { targets: ['web:3000'], hosts: ['app.test'], tls: false, healthCheck: { path: '/up' }, force: false }

describe('parseRequest', () => {
  it('passes a well-formed deploy request through', () => {
    expect(parseRequest(DEPLOY_REQUEST, 'deploy', DEPLOY)).toEqual(DEPLOY)
  })

  it.each<[string, unknown, RegExp]>([
    ['not an object', 'deploy web:3000', /^invalid deploy request: /],
    ['no targets', { ...DEPLOY, targets: [] }, /^invalid deploy request \(targets\): at least one target/],
    ['a target of the wrong type', { ...DEPLOY, targets: [3000] }, /^invalid deploy request \(targets\.0\): /],
    ['a duration as a string', { ...DEPLOY, drainTimeoutMs: '30s' }, /^invalid deploy request \(drainTimeoutMs\): /],
    ['a negative duration', { ...DEPLOY, healthCheck: { intervalMs: -1 } }, /^invalid deploy request \(healthCheck\.intervalMs\): /],
    ['an unknown field', { ...DEPLOY, sticky: true }, /^invalid deploy request \(sticky\): /],
    ['a fraction of a byte', { ...DEPLOY, buffering: { memoryBytes: 1.5 } }, /^invalid deploy request \(buffering\.memoryBytes\): /],
    ['a negative size', { ...DEPLOY, buffering: { maxRequestBodyBytes: -1 } }, /^invalid deploy request \(buffering\.maxRequestBodyBytes\): /],
    ['an unknown buffering field', { ...DEPLOY, buffering: { memory: 1 } }, /^invalid deploy request \(buffering\.memory\): /],
  ])('refuses %s with one line naming where', (_case, body, message) => {
    expect(() => parseRequest(DEPLOY_REQUEST, 'deploy', body)).toThrow(InvalidOptionError)
    expect(() => parseRequest(DEPLOY_REQUEST, 'deploy', body)).toThrow(message)
  })

  it.each([
    ['by name', { name: 'web' }],
    ['by host', { host: 'app.test' }],
  ])('takes a remove request %s', (_case, body) => {
    expect(parseRequest(REMOVE_REQUEST, 'remove', body)).toEqual(body)
  })

  it.each<[string, Parameters<typeof parseRequest>[0], unknown]>([
    ['a pause with its durations', PAUSE_REQUEST, { name: 'web', drainTimeoutMs: 0, maxPauseMs: 60_000 }],
    ['a stop by host with a message', STOP_REQUEST, { host: 'app.test', message: 'Back soon' }],
    ['a resume', RESUME_REQUEST, { name: 'web' }],
  ])('takes %s', (_case, schema, body) => {
    expect(parseRequest(schema, 'pause', body)).toEqual(body)
  })

  it.each<[string, Parameters<typeof parseRequest>[0], unknown, RegExp]>([
    ['a max pause as a string', PAUSE_REQUEST, { name: 'web', maxPauseMs: '30s' }, /^invalid pause request \(maxPauseMs\): /],
    ['a stop message that is not text', STOP_REQUEST, { name: 'web', message: 42 }, /^invalid stop request \(message\): /],
    ['a max pause given to stop', STOP_REQUEST, { name: 'web', maxPauseMs: 1 }, /^invalid stop request \(maxPauseMs\): /],
    ['a message given to resume', RESUME_REQUEST, { name: 'web', message: 'x' }, /^invalid resume request \(message\): /],
  ])('refuses %s', (_case, schema, body, message) => {
    const what = schema === PAUSE_REQUEST ? 'pause' : schema === STOP_REQUEST ? 'stop' : 'resume'
    expect(() => parseRequest(schema, what, body)).toThrow(message)
  })
})
