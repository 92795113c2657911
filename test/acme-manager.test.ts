import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { log } from '../src/lib/logger'
import { thumbprint } from '../src/primary/tls/acme-account'
import { AcmeManager, FLEET_ORDER_RECHECK_MS } from '../src/primary/tls/acme-manager'
import { describeOrderError, isUnknownAccount, renewalDue, retryAfterMs, retryDelayMs } from '../src/primary/tls/acme-schedule'
import type { CertificateStore, OrderFailure } from '../src/primary/tls/certificate-files'

// The log lines are what these tests look at; none reach stdout.
jest.mock('../src/lib/logger', () => ({ log: jest.fn() }))

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

describe('retryAfterMs', () => {
  const now = Date.parse('2026-11-26T10:00:00Z')
  it.each([
    ["Let's Encrypt's rate-limit detail", 'too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2026-11-26 12:30:00 UTC: see https://letsencrypt.org/docs/rate-limits/', 2.5 * 3_600_000],
    ['an ISO time', 'rate limited, retry after 2026-11-26T10:01:00Z', 60_000],
    ['a time already past', 'retry after 2026-11-26 09:00:00 UTC', 0],
    ['no hint at all', 'Authorization not valid: connection refused', 0],
  ])('reads %s', (_case, message, expected) => {
    expect(retryAfterMs(message, now)).toBe(expected)
  })
})

describe('isUnknownAccount', () => {
  it.each([
    ['Pebble', 'Account https://127.0.0.1:14000/my-account/5 not found.', true],
    ["Let's Encrypt", 'Account "https://acme-v02.api.letsencrypt.org/acme/acct/123" not found', true],
    ['a key with no account', 'No account exists with the provided key', true],
    ['a failed challenge', 'Invalid response from http://a.test/.well-known/acme-challenge/x: 404', false],
    ['a rate limit', 'too many certificates already issued for "a.test": see https://letsencrypt.org/docs/rate-limits/', false],
  ])('%s: %j', (_case, message, expected) => {
    expect(isUnknownAccount(new Error(message))).toBe(expected)
  })
})

describe('retryDelayMs', () => {
  const BASE_MS = 60_000
  const NOW = Date.parse('2026-11-27T09:00:00Z')
  it.each([
    ['the base after the first failure', 1, '', BASE_MS],
    ['doubling after each failure', 3, '', 4 * BASE_MS],
    ['at most a day', 20, '', 24 * 3_600_000],
    ["the CA's retry-after when later", 1, 'too many failed authorizations, retry after 2026-11-27 10:00:00 UTC', 3_600_000],
    ['the backoff when the retry-after is sooner', 8, 'retry after 2026-11-27 09:01:00 UTC', 128 * BASE_MS],
  ])('is %s', (_case, count, error, expected) => {
    expect(retryDelayMs(count, BASE_MS, error, NOW)).toBe(expected)
  })
})

describe('renewalDue', () => {
  const DAY_MS = 86_400_000
  const issued = new Date('2026-01-01T00:00:00Z')
  const certificate = { cert: 'pem', key: 'key', notBefore: issued, notAfter: new Date(issued.getTime() + 90 * DAY_MS) }
  it.each([
    ['at issuance', 0, false],
    ['halfway', 45, false],
    ['at two thirds of the lifetime', 60, true],
    ['after expiry', 91, true],
  ])('%s: due %p', (_case, days, expected) => {
    expect(renewalDue(certificate as never, issued.getTime() + (days as number) * DAY_MS)).toBe(expected)
  })
})

describe('describeOrderError', () => {
  it.each([
    ["the library's TypeError for a CA that gave no answer", new TypeError("Cannot read properties of undefined (reading 'config')"), 'the ACME CA at https://ca.test/dir cannot be reached'],
    ["the CA's own problem detail", new Error('Invalid response from http://a.test/.well-known/acme-challenge/x: 404'), 'Invalid response from http://a.test/.well-known/acme-challenge/x: 404'],
  ])('%s', (_case, err, expected) => {
    expect(describeOrderError(err, 'https://ca.test/dir')).toBe(expected)
  })
})

describe('AcmeManager timer', () => {
  const HOST = 'app.test'
  const NOW = Date.parse('2026-11-27T09:00:00Z')
  const OPTIONS = { directoryUrl: 'https://ca.test/dir', email: undefined, retryBaseMs: 60_000, checkIntervalMs: 3_600_000 }
  const ACCOUNT_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()

  /** A store with nothing stored and an account already registered; no order may reach a CA. */
  function stubStore(parts: Partial<CertificateStore>): CertificateStore {
    return {
      loadAll: async () => [],
      load: async () => undefined,
      save: async () => { throw new Error('no CA in this test') },
      loadAccount: async (directoryUrl) => ({ directoryUrl, keyPem: ACCOUNT_KEY, url: 'https://ca.test/acct/1' }),
      createAccount: async (account) => account,
      saveAccount: async () => {},
      ...parts,
    }
  }

  async function startManager(store: CertificateStore): Promise<AcmeManager> {
    const manager = new AcmeManager(OPTIONS, store, async () => {})
    await manager.load()
    manager.activate()
    manager.manage([HOST])
    await jest.advanceTimersByTimeAsync(0)
    return manager
  }

  const logged = (msg: string) => jest.mocked(log).mock.calls.filter(([, line]) => line === msg).length
  let manager: AcmeManager | undefined

  beforeEach(() => {
    jest.useFakeTimers({ now: NOW })
    jest.mocked(log).mockClear()
  })

  afterEach(() => {
    manager?.stop()
    manager = undefined
    jest.useRealTimers()
  })

  it('looks again after the fleet recheck time while another node orders, and not before', async () => {
    const ordering = jest.fn(async () => false)
    manager = await startManager(stubStore({ ordering }))
    expect(ordering).toHaveBeenCalledTimes(1)

    manager.manage([HOST])
    await jest.advanceTimersByTimeAsync(FLEET_ORDER_RECHECK_MS - 1)
    expect(ordering).toHaveBeenCalledTimes(1)
    await jest.advanceTimersByTimeAsync(1)
    expect(ordering).toHaveBeenCalledTimes(2)
  })

  it('tries the fleet again after the retry base when it cannot be asked', async () => {
    const ordering = jest.fn(async (): Promise<boolean> => { throw new Error('redis gone') })
    manager = await startManager(stubStore({ ordering }))
    await jest.advanceTimersByTimeAsync(OPTIONS.retryBaseMs - 1)
    expect(ordering).toHaveBeenCalledTimes(1)
    await jest.advanceTimersByTimeAsync(1)
    expect(ordering).toHaveBeenCalledTimes(2)
    expect(logged('cannot coordinate the certificate order with the fleet')).toBe(2)
  })

  it('waits out the backoff of a failed order shared by another node, without asking the CA', async () => {
    let shared: OrderFailure = { count: 1, error: 'refused', nextAttemptAt: NOW + 20_000 }
    const loadFailure = jest.fn(async () => shared)
    const store = stubStore({ ordering: async (_host, order) => (await order(), true), loadFailure })
    manager = await startManager(store)
    expect(manager.status(HOST)).toEqual({ state: 'failing', source: 'acme', error: 'refused' })

    await jest.advanceTimersByTimeAsync(20_000 - 1)
    expect(loadFailure).toHaveBeenCalledTimes(1)
    shared = { count: 2, error: 'refused again', nextAttemptAt: NOW + 60_000 }
    await jest.advanceTimersByTimeAsync(1)
    expect(loadFailure).toHaveBeenCalledTimes(2)
    expect(manager.status(HOST).error).toBe('refused again')
    expect(logged('certificate order failed on another node')).toBe(2)
    expect(logged('certificate order started')).toBe(0)
  })

  it('orders again at the routine check when an order left nothing to go by', async () => {
    // The fleet ran the order but it neither stored a certificate nor recorded a failure.
    const ordering = jest.fn(async () => true)
    manager = await startManager(stubStore({ ordering }))
    await jest.advanceTimersByTimeAsync(OPTIONS.checkIntervalMs - 1)
    expect(ordering).toHaveBeenCalledTimes(1)
    await jest.advanceTimersByTimeAsync(1)
    expect(ordering).toHaveBeenCalledTimes(2)
  })

  it('checks nothing once stopped', async () => {
    const ordering = jest.fn(async () => false)
    manager = await startManager(stubStore({ ordering }))
    manager.stop()
    await jest.advanceTimersByTimeAsync(OPTIONS.checkIntervalMs)
    expect(ordering).toHaveBeenCalledTimes(1)
    expect(jest.getTimerCount()).toBe(0)
  })
})
