import os from 'node:os'
import { resolveRunOptions, type RunFlags } from '../src/cli/run-options'
import { InvalidOptionError } from '../src/errors'

const resolve = (flags: RunFlags, env: NodeJS.ProcessEnv = {}) => resolveRunOptions({ 'state-dir': '/tmp/x', ...flags }, '0.0.0', env)

describe('resolveRunOptions', () => {
  it.each([
    ['HOSTNAME:HTTP_PORT by default', {}, {}, `${os.hostname()}:80`],
    ['the pid with --http-port 0', { 'http-port': 0 }, {}, `${os.hostname()}:pid${process.pid}`],
    ['--node-name', { 'node-name': 'lb-1' }, { MPROXY_NODE_NAME: 'env' }, 'lb-1'],
    ['MPROXY_NODE_NAME', {}, { MPROXY_NODE_NAME: 'lb-2.dc1' }, 'lb-2.dc1'],
  ])('names the node after %s', (_case, flags, env, name) => {
    expect(resolve({ 'redis-url': 'redis://r:6379/0', ...flags }, env).redis?.node).toBe(name)
  })

  it.each([
    ['a node name with a space', { 'redis-url': 'redis://r', 'node-name': 'lb 1' }, /invalid node name "lb 1"/],
    ['a Redis URL of another scheme', { 'redis-url': 'http://r' }, /invalid Redis URL "http:\/\/r"/],
    ['an access log setting other than true or false', { 'access-log': 'no' }, /invalid access log setting "no": expected true or false/],
  ])('refuses %s', (_case, flags, message) => {
    expect(() => resolve(flags)).toThrow(InvalidOptionError)
    expect(() => resolve(flags)).toThrow(message)
  })

  it.each([
    ['on by default', {}, {}, true],
    ['off with --access-log false', { 'access-log': 'false' }, {}, false],
    ['off with MPROXY_ACCESS_LOG=false', {}, { MPROXY_ACCESS_LOG: 'false' }, false],
    ['on when the flag beats the environment', { 'access-log': 'true' }, { MPROXY_ACCESS_LOG: 'false' }, true],
  ])('keeps the access log %s', (_case, flags, env, on) => {
    expect(resolve(flags, env).accessLog).toBe(on)
  })

  it.each<[string, RunFlags, NodeJS.ProcessEnv, RegExp]>([
    ['--shutdown-timeout', { 'shutdown-timeout': '1000h' }, {}, /invalid shutdown timeout "1000h": at most 596h31m23\.647s/],
    ['MPROXY_RESPONSE_IDLE_TIMEOUT', {}, { MPROXY_RESPONSE_IDLE_TIMEOUT: '600h' }, /invalid response idle timeout "600h": at most/],
  ])('refuses a duration no timer holds in %s', (_case, flags, env, message) => {
    expect(() => resolve(flags, env)).toThrow(message)
  })

  it.each([
    ['5 minutes by default', {}, {}, 300_000],
    ['--response-idle-timeout', { 'response-idle-timeout': '90s' }, { MPROXY_RESPONSE_IDLE_TIMEOUT: '1s' }, 90_000],
    ['MPROXY_RESPONSE_IDLE_TIMEOUT', {}, { MPROXY_RESPONSE_IDLE_TIMEOUT: '1s' }, 1_000],
  ])('takes the response idle timeout from %s', (_case, flags, env, ms) => {
    expect(resolve(flags, env).responseIdleTimeoutMs).toBe(ms)
  })

  it.each<[string, RunFlags, NodeJS.ProcessEnv, number | undefined]>([
    ['off by default', {}, {}, undefined],
    ['off with 0', { 'metrics-port': '0' }, { MPROXY_METRICS_PORT: '9090' }, undefined],
    ['on a port given', { 'metrics-port': '9090' }, {}, 9090],
    ['on a free port with auto (0 to listen on)', { 'metrics-port': 'auto' }, {}, 0],
    ['on MPROXY_METRICS_PORT', {}, { MPROXY_METRICS_PORT: '9091', METRICS_PORT: '9092' }, 9091],
    ['on METRICS_PORT, as kamal-proxy reads it', {}, { METRICS_PORT: '9092' }, 9092],
  ])('serves metrics %s', (_case, flags, env, port) => {
    expect(resolve(flags, env).metricsPort).toBe(port)
  })

  it.each<[string, RunFlags, NodeJS.ProcessEnv, RegExp]>([
    ['a port out of range', { 'metrics-port': '70000' }, {}, /^invalid --metrics-port: expected a port from 0 \(off\) to 65535, or auto$/],
    ['a name in the environment', {}, { MPROXY_METRICS_PORT: 'yes' }, /^invalid MPROXY_METRICS_PORT: expected a port/],
  ])('refuses a metrics port that is %s', (_case, flags, env, message) => {
    expect(() => resolve(flags, env)).toThrow(message)
  })

  it('has no Redis and no node name without --redis-url', () => {
    expect(resolve({}).redis).toBeUndefined()
  })
})
