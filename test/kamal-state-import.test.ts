import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { LETS_ENCRYPT_DIRECTORY, LETS_ENCRYPT_STAGING_DIRECTORY } from '../src/options'
import { readAutocertFile, reuseKamalCertificates } from '../src/kamal/certificate-import'
import { importKamalState } from '../src/kamal/state-import'
import { CertificateFiles } from '../src/primary/tls/certificate-files'
import { parseSnapshot } from '../src/primary/state/state-store'
import { makeStateDir } from './helpers'

const fixture = fs.readFileSync(path.join(__dirname, 'fixtures', 'kamal-proxy.state'), 'utf8')
const HEALTH = { path: '/up', intervalMs: 1000, timeoutMs: 5000 }

describe('kamal-proxy state import', () => {
  const imported = importKamalState(fixture, '/data')
  const spec = (name: string) => imported.services.find((service) => service.name === name)

  it('imports the services mproxy can serve, sorted by name, as state mproxy reads back', () => {
    expect(imported.services.map((service) => service.name)).toEqual(['app-api', 'app-web', 'fallback', 'legacy', 'secure', 'staging-app'])
    expect(parseSnapshot(JSON.stringify({ version: 1, services: imported.services }), 'imported').services).toEqual(imported.services)
  })

  it('carries hosts, targets, durations (nanoseconds) and the rollout slot with its split over', () => {
    expect(spec('app-web')).toEqual({
      name: 'app-web', hosts: ['app.example.com'], targets: ['a1b2c3d4e5f6:80'], pathPrefixes: ['/'], stripPathPrefix: true, scopeCookiePaths: false,
      healthCheck: HEALTH, targetTimeoutMs: 30000, drainTimeoutMs: 30000, drainWebSockets: false, tls: true, tlsRedirect: true,
      excludeMetricsPaths: [], state: 'running', stopMessage: '', maxPauseMs: 30000,
      forwardHeaders: false, logRequestHeaders: ['cache-control', 'last-modified', 'user-agent'], logResponseHeaders: [],
      buffering: { requests: true, responses: true, memoryBytes: 1_048_576, maxRequestBodyBytes: 0, maxResponseBodyBytes: 0 },
      rollout: { targets: ['f6e5d4c3b2a1:80'], split: { percent: 20, allowlist: ['staff'] } },
      readTargets: [], writerAffinityTimeoutMs: 1000, readTargetWebSockets: false,
    })
  })

  it('gives a path-prefixed service the TLS settings of its host\'s root, as kamal-proxy served it', () => {
    expect(spec('app-api')).toMatchObject({
      hosts: ['app.example.com'], pathPrefixes: ['/api'], stripPathPrefix: false, scopeCookiePaths: true, targets: ['api-1:3000', 'api-2:3000'],
      readTargets: ['api-replica:3000'],
      healthCheck: { path: '/health', intervalMs: 500, timeoutMs: 2000 }, targetTimeoutMs: 10000, tls: true, tlsRedirect: true,
    })
  })

  it('reads the fields of older versions, and a target without port as port 80', () => {
    expect(spec('legacy')).toMatchObject({ hosts: ['legacy.example.com'], targets: ['legacy-web:3000'], targetTimeoutMs: 3000, stripPathPrefix: false, tls: false })
    expect(spec('fallback')).toMatchObject({ hosts: [], targets: ['web-1:80'], excludeMetricsPaths: ['/up'] })
  })

  it('keeps provided certificate files and error pages', () => {
    expect(spec('secure')).toMatchObject({
      errorPagesPath: '/home/kamal-proxy/.apps-config/secure/error_pages/abc123',
      tls: true, tlsRedirect: false,
      tlsCertificatePath: '/home/kamal-proxy/.apps-config/secure/tls/cert.pem', tlsPrivateKeyPath: '/home/kamal-proxy/.apps-config/secure/tls/key.pem',
    })
  })

  it('names the services it leaves out, and why', () => {
    expect(imported.skipped).toEqual([
      { service: 'tenants', reason: expect.stringMatching(/needs at least one --host/) },
      { service: 'broken', reason: 'http://broken:3000 :invalid host pattern' },
    ])
  })

  it('names, per service, the options mproxy does not apply', () => {
    const dropped = Object.fromEntries(imported.dropped.map(({ service, options }) => [service, options.map((option) => option.split(' ')[0])]))
    expect(dropped).toEqual({
      secure: ['--health-check-port', '--health-check-host'],
    })
  })

  it('keeps paused and stopped services so, with their message and how long requests are held', () => {
    expect(spec('legacy')).toMatchObject({ state: 'stopped', stopMessage: 'Back soon', maxPauseMs: 30000 })
    expect(spec('fallback')).toMatchObject({ state: 'paused', stopMessage: '', maxPauseMs: 45000 })
    expect(spec('app-web')).toMatchObject({ state: 'running' })
  })

  it('says where the automatic certificates of each service were cached', () => {
    expect(imported.certificates).toEqual([
      { hosts: ['app.example.com'], cachePath: '/home/kamal-proxy/.config/kamal-proxy/certs', directory: '' },
      { hosts: ['staging.example.com'], cachePath: '/home/kamal-proxy/.config/kamal-proxy/certs', directory: LETS_ENCRYPT_STAGING_DIRECTORY },
      { hosts: ['app.example.com'], cachePath: '/home/kamal-proxy/.config/kamal-proxy/certs', directory: '' },
    ])
  })

  it.each([['not JSON', '{', /^not JSON/], ['not a list', '{"name":"web"}', /not a list of services/]])('refuses a file that is %s', (_case, text, message) => {
    expect(() => importKamalState(text, '/data')).toThrow(message)
  })
})

describe('kamal-proxy certificate reuse', () => {
  /** An autocert cache as kamal-proxy leaves it: `<cache>/<sha256 of ''>/<host>`, each file a key then a chain. */
  const FIXTURE_CACHE = path.join(__dirname, 'fixtures', 'kamal-proxy-certs')
  const PRODUCTION = createHash('sha256').update('').digest('hex')
  const fixtureFile = (name: string) => fs.readFileSync(path.join(FIXTURE_CACHE, PRODUCTION, name), 'utf8')

  it('copies the certificates kamal-proxy cached for the Let\'s Encrypt directory, leaving the cache as it was', async () => {
    const cache = makeStateDir()
    fs.cpSync(FIXTURE_CACHE, cache, { recursive: true })
    const before = fs.readdirSync(path.join(cache, PRODUCTION)).map((name) => fs.readFileSync(path.join(cache, PRODUCTION, name), 'utf8'))
    const store = new CertificateFiles(makeStateDir())

    const result = await reuseKamalCertificates([
      { hosts: ['app.example.com', 'rsa.example.com', 'old.example.com', 'wrong.example.com', 'none.example.com'], cachePath: cache, directory: '' },
      { hosts: ['staging.example.com'], cachePath: cache, directory: LETS_ENCRYPT_STAGING_DIRECTORY },
    ], LETS_ENCRYPT_DIRECTORY, store)

    expect(result.reused.map((certificate) => certificate.host)).toEqual(['app.example.com', 'rsa.example.com'])
    expect(result.missing).toEqual([
      { host: 'old.example.com', reason: expect.stringMatching(/expired on 2020-03-31/) },
      { host: 'wrong.example.com', reason: expect.stringMatching(/does not cover wrong\.example\.com/) },
      { host: 'none.example.com', reason: expect.stringMatching(/^none in /) },
      { host: 'staging.example.com', reason: `kamal-proxy ordered it from ${LETS_ENCRYPT_STAGING_DIRECTORY}, mproxy orders from ${LETS_ENCRYPT_DIRECTORY}` },
    ])
    const stored = await store.load('app.example.com')
    expect(stored?.key).toMatch(/^-----BEGIN PRIVATE KEY-----/)
    expect(stored?.cert).toMatch(/^-----BEGIN CERTIFICATE-----/)
    expect(stored?.notAfter.getUTCFullYear()).toBeGreaterThan(2100)
    expect(fs.readdirSync(path.join(cache, PRODUCTION)).map((name) => fs.readFileSync(path.join(cache, PRODUCTION, name), 'utf8'))).toEqual(before)

    // A certificate mproxy has already is kept.
    const again = await reuseKamalCertificates([{ hosts: ['app.example.com'], cachePath: cache, directory: '' }], LETS_ENCRYPT_DIRECTORY, store)
    expect(again).toEqual({ reused: [], missing: [] })
  })

  it('refuses a cache file whose key is not the certificate\'s, or that holds no PEM', () => {
    const ecKey = fixtureFile('app.example.com').split(/(?=-----BEGIN CERTIFICATE)/)[0]
    const rsaChain = fixtureFile('rsa.example.com+rsa').slice(fixtureFile('rsa.example.com+rsa').indexOf('-----BEGIN CERTIFICATE'))
    expect(() => readAutocertFile(ecKey + rsaChain, 'rsa.example.com')).toThrow('the key does not belong to the certificate')
    expect(() => readAutocertFile('garbage', 'a.example.com')).toThrow('no private key and certificate in PEM')
  })
})
