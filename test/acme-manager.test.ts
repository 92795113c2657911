import { createPublicKey } from 'node:crypto'
import { isUnknownAccount, retryAfterMs, thumbprint } from '../src/primary/acme-manager'

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
