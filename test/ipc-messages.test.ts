import { isPrimaryMessage, isUpgradeMessage, isWorkerMessage } from '../src/ipc/messages'

const SERVICE = { name: 'web', hosts: ['a.test'], pathPrefixes: ['/'], stripPathPrefix: true, scopeCookiePaths: false, targets: ['web:3000'], targetTimeoutMs: 30_000, drainWebSockets: false, tlsRedirect: false, acmeChallenges: false, canonicalHost: '', forwardHeaders: false, logRequestHeaders: [], logResponseHeaders: [] }
const TABLE = { version: 2, services: [SERVICE], acmeThumbprint: '' }

describe('IPC message guards', () => {
  it.each<[string, (value: unknown) => boolean, unknown, boolean]>([
    ['a route table without certificates', isPrimaryMessage, { mproxy: 1, type: 'routes', seq: 1, table: TABLE }, true],
    ['a route table with certificates', isPrimaryMessage, { mproxy: 1, type: 'routes', seq: 1, table: { ...TABLE, certificates: [{ hosts: ['a.test'], cert: 'C', key: 'K' }] } }, true],
    ['a route table whose targets are not a list', isPrimaryMessage, { mproxy: 1, type: 'routes', seq: 1, table: { ...TABLE, services: [{ ...SERVICE, targets: 'web:3000' }] } }, false],
    ['a route table from a primary that predates header logging', isPrimaryMessage, { mproxy: 1, type: 'routes', seq: 1, table: { ...TABLE, services: [{ ...SERVICE, logRequestHeaders: undefined }] } }, false],
    ['a shutdown without its timeout', isPrimaryMessage, { mproxy: 1, type: 'shutdown' }, false],
    ['a message of another envelope', isPrimaryMessage, { mproxy: 2, type: 'cut', targets: [] }, false],
    ['an unknown type', isPrimaryMessage, { mproxy: 1, type: 'explode' }, false],
    ['in-flight counts', isWorkerMessage, { mproxy: 1, type: 'inflight', inflight: { 'web:3000': 2 } }, true],
    ['in-flight counts that are not numbers', isWorkerMessage, { mproxy: 1, type: 'inflight', inflight: { 'web:3000': 'two' } }, false],
    ['ready, with and without an HTTPS error', isWorkerMessage, { mproxy: 1, type: 'ready', version: 1, httpPort: 80, httpsPort: 0, httpsError: 'EACCES' }, true],
    ['a socket of an unknown protocol', isUpgradeMessage, { mproxy: 1, type: 'socket', slot: 0, protocol: 'ftp' }, false],
    ['nothing', isWorkerMessage, null, false],
  ])('%s', (_case, guard, message, valid) => {
    expect(guard(message)).toBe(valid)
  })
})
