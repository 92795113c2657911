/**
 * What the primary and its ACME thread (acme-thread.ts, acme-thread-entry.ts) say to each other.
 * Every request carries an `id`; the thread's answers and questions about it carry the same one.
 */

export type ChallengeType = 'http-01' | 'tls-alpn-01'

/** The account every request acts for. */
export interface AcmeAccount {
  directoryUrl: string
  keyPem: string
  /** Undefined until the CA has told it (the first order or a registration does). */
  url: string | undefined
  email: string | undefined
}

export type ToThread =
  | { type: 'order'; id: number; account: AcmeAccount; host: string; challengeType: ChallengeType; thumbprint: string }
  | { type: 'register'; id: number; account: AcmeAccount }
  /** The primary has acted on the thread's `challenge` or `challenge-removed`; with `error`, it could not. */
  | { type: 'ack'; id: number; error?: string }

export type FromThread =
  /** The challenge is set up on the CA's side; for TLS-ALPN-01, every worker must serve `alpn` first. */
  | { type: 'challenge'; id: number; challengeType: string; alpn?: { cert: string; key: string }; keyAuthorizationMatches: boolean }
  | { type: 'challenge-removed'; id: number }
  | { type: 'issued'; id: number; cert: string; key: string; accountUrl: string }
  /** `accountUrl` undefined: the CA did not give one (see `error`). */
  | { type: 'registered'; id: number; accountUrl: string | undefined; answeredWithError?: string; error?: string }
  /** `error` is worded for the operator (describeOrderError). */
  | { type: 'failed'; id: number; error: string }
