import { X509Certificate, createPrivateKey } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { createSelfSigned, prepareStandInKey } from '../src/primary/tls/self-signed'

describe('createSelfSigned', () => {
  it.each([
    ['one host', ['a.test']],
    ['several hosts', ['a.test', 'www.a.test']],
    ['a wildcard', ['*.a.test']],
  ])('makes a stand-in for %s that names them, verifies against itself, matches its key and loads into TLS', async (_case, hosts) => {
    await prepareStandInKey()
    const { cert, key } = createSelfSigned(hosts)
    const x509 = new X509Certificate(cert)

    expect(x509.subjectAltName).toBe(hosts.map((host) => `DNS:${host}`).join(', '))
    expect(x509.subject).toMatch(/certificate pending/)
    expect(x509.verify(x509.publicKey)).toBe(true)
    expect(x509.checkPrivateKey(createPrivateKey(key))).toBe(true)
    expect(() => createSecureContext({ cert, key })).not.toThrow()
  })
})
