import fs from 'node:fs'
import path from 'node:path'
import { CertificateFiles } from '../src/primary/tls/certificate-files'
import { createSelfSigned } from '../src/primary/tls/self-signed'
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
    expect(await files.loadAccount('https://ca.test/dir')).toBeUndefined()
    await files.saveAccount({ directoryUrl: 'https://ca.test/dir', keyPem: 'KEY', url: 'https://ca.test/acct/1' })
    expect(await files.loadAccount('https://ca.test/dir')).toEqual({ directoryUrl: 'https://ca.test/dir', keyPem: 'KEY', url: 'https://ca.test/acct/1' })
  })
})
