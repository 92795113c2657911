import { generateKeyPairSync } from 'node:crypto'
import { log } from '../src/lib/logger'
import { AcmeAccountClient, thumbprint } from '../src/primary/tls/acme-account'
import type { Registration } from '../src/primary/tls/acme-thread'
import type { AcmeAccount } from '../src/primary/tls/acme-thread-messages'
import type { AcmeAccount as StoredAccount, CertificateStore } from '../src/primary/tls/certificate-files'

jest.mock('../src/lib/logger', () => ({ log: jest.fn() }))

const OPTIONS = { directoryUrl: 'https://ca.test/dir', email: 'ops@example.test', retryBaseMs: 60_000, checkIntervalMs: 3_600_000 }
const KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
const UNKNOWN = new Error('Account https://ca.test/acct/1 not found.')

/** A store holding at most one account; `saved` lists what saveAccount was given. */
function accountStore(initial: StoredAccount | undefined) {
  let account = initial
  const saved: StoredAccount[] = []
  const store = {
    loadAccount: async () => account,
    createAccount: async (created: StoredAccount) => (account = created),
    saveAccount: async (updated: StoredAccount) => { saved.push(updated); account = updated },
  } as Partial<CertificateStore> as CertificateStore
  return { store, saved }
}

async function loadedAccount(registration: Registration | Error) {
  const { store, saved } = accountStore({ directoryUrl: OPTIONS.directoryUrl, keyPem: KEY, url: 'https://ca.test/acct/1' })
  const register = jest.fn(async (_account: AcmeAccount) => {
    if (registration instanceof Error) throw registration
    return registration
  })
  const account = new AcmeAccountClient(OPTIONS, store, { register })
  await account.load()
  return { account, register, saved }
}

beforeEach(() => jest.mocked(log).mockClear())

describe('AcmeAccountClient', () => {
  it('creates a key the first time and hands the thread the record to act for', async () => {
    const { store } = accountStore(undefined)
    const account = new AcmeAccountClient(OPTIONS, store, { register: jest.fn() })
    await account.load()
    const record = account.record()
    expect(record).toMatchObject({ directoryUrl: OPTIONS.directoryUrl, url: undefined, email: OPTIONS.email })
    expect(record.keyPem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/)
    expect(account.thumbprint).toBe(thumbprint(record.keyPem))
    expect(await store.loadAccount(OPTIONS.directoryUrl)).toEqual({ directoryUrl: OPTIONS.directoryUrl, keyPem: record.keyPem })
  })

  it('registers the same key again when the CA lost the account, and saves the new URL', async () => {
    const { account, register, saved } = await loadedAccount({ accountUrl: 'https://ca.test/acct/2' })
    expect(await account.recoverUnknown(UNKNOWN, 'a.test')).toBe(true)
    expect(register).toHaveBeenCalledWith(expect.objectContaining({ keyPem: KEY, url: undefined }))
    expect(saved).toEqual([{ directoryUrl: OPTIONS.directoryUrl, keyPem: KEY, url: 'https://ca.test/acct/2' }])
    expect(account.record().url).toBe('https://ca.test/acct/2')
  })

  it.each([
    ['the CA gives no account URL', { accountUrl: undefined, error: 'no URL' }],
    ['the thread fails', new Error('the ACME thread stopped (exit code 1)')],
  ])('gives up when %s, and the order fails as usual', async (_case, registration) => {
    const { account, saved } = await loadedAccount(registration)
    expect(await account.recoverUnknown(UNKNOWN, 'a.test')).toBe(false)
    expect(saved).toEqual([])
    expect(jest.mocked(log).mock.calls.some(([, msg]) => msg === 'acme account could not be registered again')).toBe(true)
  })

  it('registers nothing for other errors', async () => {
    const { account, register } = await loadedAccount({ accountUrl: 'https://ca.test/acct/2' })
    expect(await account.recoverUnknown(new Error('Invalid response from http://a.test/: 404'), 'a.test')).toBe(false)
    expect(register).not.toHaveBeenCalled()
  })
})
