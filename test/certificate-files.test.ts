import { createPublicKey } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { CertificateFiles } from '../src/primary/certificate-files'
import { thumbprint } from '../src/primary/acme-manager'
import { createSelfSigned } from '../src/primary/self-signed'
import { makeStateDir } from './helpers'

describe('CertificateFiles', () => {
  it('stores certificates with mode 0600 and loads them back, skipping an unreadable one', async () => {
    const stateDir = makeStateDir()
    const files = new CertificateFiles(stateDir)
    await files.loadAll()
    const good = createSelfSigned(['good.test'])
    await files.save('good.test', good.cert, good.key)
    fs.writeFileSync(path.join(stateDir, 'certs', 'broken.test.crt'), 'not a certificate')
    fs.writeFileSync(path.join(stateDir, 'certs', 'broken.test.key'), 'not a key')

    const loaded = await files.loadAll()
    expect(loaded.map((certificate) => certificate.host)).toEqual(['good.test'])
    expect(loaded[0].notAfter.getTime()).toBeGreaterThan(Date.now())
    for (const name of ['good.test.crt', 'good.test.key']) {
      expect(fs.statSync(path.join(stateDir, 'certs', name)).mode & 0o777).toBe(0o600)
    }
  })

  it('keeps the ACME account with its URL', async () => {
    const files = new CertificateFiles(makeStateDir())
    expect(await files.loadAccount()).toBeUndefined()
    await files.saveAccount({ directoryUrl: 'https://ca.test/dir', keyPem: 'KEY', url: 'https://ca.test/acct/1' })
    expect(await files.loadAccount()).toEqual({ directoryUrl: 'https://ca.test/dir', keyPem: 'KEY', url: 'https://ca.test/acct/1' })
  })
})

describe('thumbprint', () => {
  it('is the RFC 7638 SHA-256 JWK thumbprint, base64url', () => {
    // The RSA example key of RFC 7638 section 3.1, whose thumbprint the RFC gives.
    const jwk = {
      kty: 'RSA', e: 'AQAB',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    }
    const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
    expect(thumbprint(pem)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs')
  })
})
