import { createPublicKey } from 'node:crypto'
import { thumbprint } from '../src/primary/tls/acme-manager'
import { describeOrderError, isUnknownAccount, renewalDue, retryAfterMs, retryDelayMs } from '../src/primary/tls/acme-schedule'

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
