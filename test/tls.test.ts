import { errorLines, makeTestCertificate, request, startBackend, startProxy, type TestCertificate } from './helpers'

const HOST = 'app.mproxy.test'
/** Fresh connections spread over both workers (the kernel hashes them over the workers' sockets; 6 reach both 97 % of the time). */
const CONNECTIONS = 6

describe('TLS with provided certificates', () => {
  let certificate: TestCertificate
  beforeAll(() => {
    certificate = makeTestCertificate([HOST])
  })
  const tlsFlags = () => ['--host', HOST, '--tls-certificate-path', certificate.certFile, '--tls-private-key-path', certificate.keyFile]
  const overTls = () => ({ host: HOST, tls: { ca: certificate.ca, servername: HOST } })

  it('serves the certificate for its host name from every worker, with X-Forwarded-Proto https', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 2 })
    await proxy.deploy([backend.address], tlsFlags())

    for (let i = 0; i < CONNECTIONS; i++) {
      const res = await request(proxy.httpsPort, { ...overTls(), path: '/headers' })
      expect(res.status).toBe(200)
      expect(JSON.parse(res.body)).toMatchObject({ 'x-forwarded-proto': 'https', host: HOST })
    }
    const [service] = (await proxy.list()).services
    expect(service).toMatchObject({ tls: true, certificates: [{ host: HOST, state: 'valid', source: 'custom' }] })
  })

  it('redirects plain HTTP to HTTPS with path and query kept, unless --tls-redirect=false', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], tlsFlags())

    const redirected = await request(proxy.port, { host: `${HOST}:${proxy.port}`, path: '/a/b?c=d&e' })
    expect(redirected.status).toBe(301)
    expect(redirected.headers.location).toBe(`https://${HOST}:${proxy.httpsPort}/a/b?c=d&e`)

    await proxy.deploy([backend.address], [...tlsFlags(), '--tls-redirect=false'])
    expect((await request(proxy.port, { host: HOST })).status).toBe(200)
    expect((await request(proxy.httpsPort, overTls())).status).toBe(200)
  })

  it('keeps serving the certificate after changes that leave it out of the table, and in workers started later', async () => {
    const [a, b] = [await startBackend(), await startBackend()]
    const proxy = await startProxy({ workers: 2 })
    await proxy.deploy([a.address], tlsFlags())
    // Tables sent from now on leave the unchanged certificates out: workers keep theirs.
    await proxy.deploy([b.address], tlsFlags())
    await proxy.deploy([a.address], ['--host', 'plain.test'])
    expect((await request(proxy.httpsPort, overTls())).body).toBe(b.name)

    // New workers get the certificates with their first table.
    expect((await proxy.cli(['reload'])).code).toBe(0)
    for (let i = 0; i < CONNECTIONS; i++) expect((await request(proxy.httpsPort, overTls())).body).toBe(b.name)
  })

  it('fails the handshake for names it has no certificate for', async () => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    await proxy.deploy([backend.address], tlsFlags())
    await expect(request(proxy.httpsPort, { host: 'other.test', tls: { ca: certificate.ca, servername: 'other.test' } })).rejects.toThrow()
  })

  it('serves the stored certificate again after a restart', async () => {
    const backend = await startBackend()
    const first = await startProxy({ workers: 1 })
    await first.deploy([backend.address], tlsFlags())
    expect(await first.stop()).toBe(0)

    const second = await startProxy({ workers: 1, stateDir: first.stateDir })
    expect((await request(second.httpsPort, overTls())).status).toBe(200)
  })

  it.each([
    ['--ssl without a host', () => ['--ssl'], /needs at least one --host/],
    ['automatic certificates for a wildcard host', () => ['--host', '*.mproxy.test', '--ssl'], /wildcard/],
    ['a certificate without its key', () => ['--host', HOST, '--tls-certificate-path', certificate.certFile], /give both/],
    ['an unreadable key file', () => ['--host', HOST, '--tls-certificate-path', certificate.certFile, '--tls-private-key-path', '/nonexistent/key.pem'], /cannot read the private key/],
    ['a key of another certificate', () => ['--host', HOST, '--tls-certificate-path', certificate.certFile, '--tls-private-key-path', makeTestCertificate([HOST]).keyFile], /does not belong/],
    ['a certificate for other names', () => ['--host', 'elsewhere.test', '--tls-certificate-path', certificate.certFile, '--tls-private-key-path', certificate.keyFile], /does not cover elsewhere.test/],
    ['a bad --tls-redirect value', () => ['--host', HOST, '--tls-redirect=maybe'], /tls-redirect/],
  ])('refuses %s with one error line and changes nothing', async (_case, flags, message) => {
    const backend = await startBackend()
    const proxy = await startProxy({ workers: 1 })
    const result = await proxy.cli(['deploy', backend.address, ...flags()])
    expect(result.code).toBe(1)
    expect(errorLines(result.stderr)).toHaveLength(1)
    expect(result.stderr).toMatch(message)
    expect((await proxy.list()).services).toEqual([])
  })
})
