import { isPrimaryMessage, isUpgradeMessage, isWorkerMessage } from '../src/ipc/messages'

const SERVICE = { name: 'web', hosts: ['a.test'], pathPrefixes: ['/'], stripPathPrefix: true, scopeCookiePaths: false, targets: ['web:3000'], readTargets: [], writerAffinityMs: 0, readTargetWebSockets: false, rolloutTargets: [], targetTimeoutMs: 30_000, drainWebSockets: false, tlsRedirect: false, excludeMetricsPaths: ['/up'], acmeChallenges: false,
  state: 'running', stopMessage: '', maxPauseMs: 30_000, healthCheckPath: '/up', errorPages: {},
  buffering: { requests: false, responses: false, memoryBytes: 1_048_576, maxRequestBodyBytes: 0, maxResponseBodyBytes: 0 },
  canonicalHost: '', forwardHeaders: false, logRequestHeaders: [], logResponseHeaders: [] }
const METRIC = {
  name: 'mproxy_http_requests_total', help: 'Requests', type: 'counter', aggregator: 'sum',
  values: [{ value: 2, labels: { service: 'web', method: 'GET', status: '200' } }, { value: 1, labels: { le: '+Inf' }, metricName: 'x_bucket' }],
}
const TABLE = { version: 2, services: [SERVICE], acmeThumbprint: '' }

describe('IPC message guards', () => {
  it.each<[string, (value: unknown) => boolean, unknown, boolean]>([
    ['a route table without certificates', isPrimaryMessage, { mproxy: 1, type: 'routes', seq: 1, table: TABLE }, true],
    ['a route table with certificates', isPrimaryMessage, { mproxy: 1, type: 'routes', seq: 1, table: { ...TABLE, certificates: [{ hosts: ['a.test'], cert: 'C', key: 'K' }] } }, true],
    ['a route table whose targets are not a list', isPrimaryMessage, { mproxy: 1, type: 'routes', seq: 1, table: { ...TABLE, services: [{ ...SERVICE, targets: 'web:3000' }] } }, false],
    ['a route table of a stopped service with its own pages', isPrimaryMessage, { mproxy: 1, type: 'routes', seq: 1, table: { ...TABLE, services: [{ ...SERVICE, state: 'stopped', stopMessage: 'Back soon', errorPages: { 503: '<p>{{ .Message }}</p>' } }] } }, true],
    ['a route table of a service in an unknown state', isPrimaryMessage, { mproxy: 1, type: 'routes', seq: 1, table: { ...TABLE, services: [{ ...SERVICE, state: 'sleeping' }] } }, false],
    ['a cut of one service', isPrimaryMessage, { mproxy: 1, type: 'cut', targets: ['web:3000'], service: 'web' }, true],
    ['a route table from a primary that predates header logging', isPrimaryMessage, { mproxy: 1, type: 'routes', seq: 1, table: { ...TABLE, services: [{ ...SERVICE, logRequestHeaders: undefined }] } }, false],
    ['a shutdown without its timeout', isPrimaryMessage, { mproxy: 1, type: 'shutdown' }, false],
    ['a message of another envelope', isPrimaryMessage, { mproxy: 2, type: 'cut', targets: [] }, false],
    ['an unknown type', isPrimaryMessage, { mproxy: 1, type: 'explode' }, false],
    ['in-flight counts', isWorkerMessage, { mproxy: 1, type: 'inflight', inflight: { 'web:3000': 2 } }, true],
    ['in-flight counts with held requests', isWorkerMessage, { mproxy: 1, type: 'inflight', inflight: { 'web:3000': 2 }, held: { web: 3 } }, true],
    ['in-flight counts that are not numbers', isWorkerMessage, { mproxy: 1, type: 'inflight', inflight: { 'web:3000': 'two' } }, false],
    ['ready, with and without an HTTPS error', isWorkerMessage, { mproxy: 1, type: 'ready', version: 1, httpPort: 80, httpsPort: 0, httpsError: 'EACCES' }, true],
    ['a request for metrics', isPrimaryMessage, { mproxy: 1, type: 'collect-metrics', seq: 3 }, true],
    ['metrics in prom-client\'s JSON form', isWorkerMessage, { mproxy: 1, type: 'metrics', ack: 3, metrics: [METRIC] }, true],
    ['metrics whose value JSON turned into null', isWorkerMessage, { mproxy: 1, type: 'metrics', ack: 3, metrics: [{ ...METRIC, values: [{ value: null, labels: {} }] }] }, false],
    ['final metrics', isWorkerMessage, { mproxy: 1, type: 'final-metrics', metrics: [] }, true],
    ['prom-client\'s own cluster request (not used, and never mistaken for ours)', isPrimaryMessage, { type: 'prom-client:getMetricsReq', requestId: 1 }, false],
    ['a socket of an unknown protocol', isUpgradeMessage, { mproxy: 1, type: 'socket', slot: 0, protocol: 'ftp' }, false],
    ['nothing', isWorkerMessage, null, false],
  ])('%s', (_case, guard, message, valid) => {
    expect(guard(message)).toBe(valid)
  })
})
