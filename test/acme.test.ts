import { X509Certificate } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import { onCleanup, request, startBackend, startPebble, startProxy, waitUntil, type Pebble, type Proxy } from './helpers'

const HOST = 'app.acme.test'
/** Issuance against Pebble takes well under a second; this bounds it on a loaded machine. */
const ISSUANCE_TIMEOUT_MS = 20_000

async function startAcmeProxy(pebble: Pebble, opts: { stateDir?: string; env?: Record<string, string> } = {}): Promise<Proxy> {
  const proxy = await startProxy({
    workers: 2,
    stateDir: opts.stateDir,
    args: ['--acme-directory', pebble.directoryUrl],
    env: { NODE_EXTRA_CA_CERTS: pebble.listenerCaFile, MPROXY_ACME_RETRY_BASE: '200ms', ...opts.env },
  })
  pebble.forwardTo(proxy.port)
  return proxy
}

/** A proxy with a service for HOST whose automatic certificate has been issued. */
async function proxyWithCertificate(pebble: Pebble): Promise<Proxy> {
  const backend = await startBackend()
  const proxy = await startAcmeProxy(pebble)
  await proxy.deploy([backend.address], ['--host', HOST, '--ssl'])
  await waitUntil(async () => (await certificateState(proxy, HOST)) === 'valid', ISSUANCE_TIMEOUT_MS, 'the certificate')
  return proxy
}

async function certificateState(proxy: Proxy, host: string): Promise<string | undefined> {
  const services = (await proxy.list()).services
  return services.flatMap((service) => service.certificates).find((certificate) => certificate.host === host)?.state
}

/** The certificate the proxy presents for `servername`, verified against `ca`. */
function presentedCertificate(port: number, servername: string, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca }, () => {
      const raw = socket.getPeerX509Certificate()
      socket.destroy()
      if (raw) resolve(raw)
      else reject(new Error('no certificate'))
    })
    socket.on('error', reject)
  })
}

describe('automatic certificates (ACME, against Pebble)', () => {
  it('issues a certificate chained to the CA root, served by every worker, and redirects HTTP afterwards', async () => {
    const pebble = await startPebble()
    const proxy = await proxyWithCertificate(pebble)

    const root = await pebble.root()
    for (let i = 0; i < 4; i++) {
      const res = await request(proxy.httpsPort, { host: HOST, path: '/headers', tls: { ca: root, servername: HOST } })
      expect(res.status).toBe(200)
      expect(JSON.parse(res.body)['x-forwarded-proto']).toBe('https')
    }
    expect((await presentedCertificate(proxy.httpsPort, HOST, root)).subjectAltName).toBe(`DNS:${HOST}`)

    const plain = await request(proxy.port, { host: HOST, path: '/page?q=1' })
    expect(plain.status).toBe(301)
    expect(plain.headers.location).toBe(`https://${HOST}:${proxy.httpsPort}/page?q=1`)
    // The challenge path is answered, not redirected, and never reaches the app.
    const challenge = await request(proxy.port, { host: HOST, path: '/.well-known/acme-challenge/abcdefghijklmnopqrstuvwxyz' })
    expect(challenge.status).toBe(200)
    expect(challenge.body).toMatch(/^abcdefghijklmnopqrstuvwxyz\.[A-Za-z0-9_-]{43}$/)
    expect((await request(proxy.port, { host: HOST, path: '/.well-known/acme-challenge/bad%20token' })).status).toBe(404)
    expect(proxy.logs.some((line) => line.msg === 'certificate issued' && line.host === HOST)).toBe(true)
  })

  it('serves a self-signed stand-in while the certificate is pending, and keeps HTTP working', async () => {
    // The CA is down: its port refuses every connection. (A stopped Pebble's port could be taken
    // by another test's server meanwhile, which would answer something else.)
    const down = net.createServer((socket) => socket.resetAndDestroy())
    await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve))
    onCleanup(() => new Promise<void>((resolve) => down.close(() => resolve())))
    const backend = await startBackend()
    const proxy = await startProxy({
      workers: 2,
      args: ['--acme-directory', `https://127.0.0.1:${(down.address() as net.AddressInfo).port}/dir`],
      env: { MPROXY_ACME_RETRY_BASE: '200ms' },
    })
    await proxy.deploy([backend.address], ['--host', HOST, '--ssl'])

    expect((await request(proxy.port, { host: HOST })).status).toBe(200)
    // Not trusted by anyone, but a certificate all the same: the handshake completes.
    const standIn = await presentedCertificate(proxy.httpsPort, HOST, '').catch((err: Error) => err)
    expect(String(standIn)).toMatch(/self.signed|unable to verify/i)
    // It keeps trying, backing off: two failures logged.
    const failed = await proxy.waitForLog((line) => line.msg === 'certificate order failed' && line.failures === 2, ISSUANCE_TIMEOUT_MS)
    expect(failed.error).toMatch(/^the ACME CA at https:\/\/127\.0\.0\.1:\d+\/dir cannot be reached$/)
    expect(await certificateState(proxy, HOST)).toBe('failing')
  })

  it('reuses the stored certificate after a restart, without a new order', async () => {
    const pebble = await startPebble()
    const first = await proxyWithCertificate(pebble)
    expect(await first.stop()).toBe(0)

    const second = await startAcmeProxy(pebble, { stateDir: first.stateDir })
    const root = await pebble.root()
    expect((await request(second.httpsPort, { host: HOST, tls: { ca: root, servername: HOST } })).status).toBe(200)
    expect(second.logs.some((line) => line.msg === 'certificate order started')).toBe(false)
  })

  it('renews a certificate at two thirds of its lifetime', async () => {
    const pebble = await startPebble({ validitySeconds: 15 })
    const backend = await startBackend()
    const proxy = await startAcmeProxy(pebble, { env: { MPROXY_ACME_CHECK_INTERVAL: '250ms' } })
    await proxy.deploy([backend.address], ['--host', HOST, '--ssl'])
    await proxy.waitForLog((line) => line.msg === 'certificate issued', ISSUANCE_TIMEOUT_MS)
    await proxy.waitForLog((line) => line.msg === 'certificate renewed' && line.host === HOST, ISSUANCE_TIMEOUT_MS)
    expect(await certificateState(proxy, HOST)).toBe('valid')
  }, 40_000)

  it('falls back to TLS-ALPN-01 when HTTP-01 cannot validate', async () => {
    const pebble = await startPebble()
    const backend = await startBackend()
    const proxy = await startAcmeProxy(pebble)
    pebble.forwardTo(1) // port 80 unreachable: HTTP-01 fails
    pebble.forwardTlsTo(proxy.httpsPort)
    await proxy.deploy([backend.address], ['--host', HOST, '--ssl'])

    await proxy.waitForLog((line) => line.msg === 'certificate order failed' && line.challenge === 'http-01', ISSUANCE_TIMEOUT_MS)
    await proxy.waitForLog((line) => line.msg === 'certificate issued' && line.challenge === 'tls-alpn-01', ISSUANCE_TIMEOUT_MS)
    const root = await pebble.root()
    expect((await request(proxy.httpsPort, { host: HOST, tls: { ca: root, servername: HOST } })).status).toBe(200)
  })

  it('keeps serving issued certificates while the CA is down, and retries the ones it cannot get', async () => {
    const pebble = await startPebble()
    const proxy = await proxyWithCertificate(pebble)
    const root = await pebble.root()
    await pebble.stop()

    const backend = await startBackend()
    await proxy.deploy([backend.address], ['--host', 'second.acme.test', '--ssl'])
    await proxy.waitForLog((line) => line.msg === 'certificate order failed' && line.host === 'second.acme.test' && line.failures === 2, ISSUANCE_TIMEOUT_MS)
    expect((await request(proxy.httpsPort, { host: HOST, tls: { ca: root, servername: HOST } })).status).toBe(200)
    const [service] = (await proxy.list()).services.filter((s) => s.name === 'second.acme.test')
    expect(service.certificates[0]).toMatchObject({ state: 'failing', source: 'acme' })
  })
})

describe('an ACME account the CA no longer knows', () => {
  it('is registered again with the same key, and the order retried', async () => {
    const pebble = await startPebble()
    const first = await proxyWithCertificate(pebble)
    expect(await first.stop('SIGTERM')).toBe(0)
    // As if the CA had lost the account: the stored URL now names none.
    const accountFile = path.join(first.stateDir, 'certs', 'account.json')
    const account = JSON.parse(fs.readFileSync(accountFile, 'utf8')) as { url: string }
    const forgotten = account.url.replace(/[^/]+$/, 'forgotten-account')
    fs.writeFileSync(accountFile, JSON.stringify({ ...account, url: forgotten }))

    const backend = await startBackend()
    const second = await startAcmeProxy(pebble, { stateDir: first.stateDir })
    await second.deploy([backend.address], ['--host', 'other.acme.test', '--ssl'])

    await waitUntil(async () => (await certificateState(second, 'other.acme.test')) === 'valid', ISSUANCE_TIMEOUT_MS, 'the certificate')
    expect(second.logs.some((line) => line.msg === 'acme account unknown to the CA, registering it again')).toBe(true)
    expect(second.logs.some((line) => line.msg === 'certificate order failed')).toBe(false)
    expect((JSON.parse(fs.readFileSync(accountFile, 'utf8')) as { url: string }).url).not.toBe(forgotten)
  })
})
