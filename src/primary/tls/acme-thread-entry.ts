/**
 * The ACME thread: talks to the CA for the primary (see acme-thread.ts). acme-client takes
 * 200-500 ms to load and builds keys' CSRs with JavaScript ASN.1 code, 10-20 ms at a time: in
 * the primary's own thread either would hold its event loop, and with it health checks, deploys
 * and route tables. What to order and when, and what becomes of the result, stay with the primary.
 */
import { parentPort } from 'node:worker_threads'
import type AcmeClient from 'acme-client'
import { oneLine } from '../../errors'
import { describeOrderError } from './acme-schedule'
import type { AcmeAccount, FromThread, ToThread } from './acme-thread-messages'

/** A CA that accepts a connection and never answers must not hold a host's order for ever. */
const ACME_REQUEST_TIMEOUT_MS = 30_000

if (!parentPort) throw new Error('acme-thread-entry runs as a worker thread of the primary')
const port = parentPort

const acme = require('acme-client') as typeof AcmeClient
// mproxy retries on its own schedule; the library's own retries would hold an order for minutes.
;(acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0
acme.axios.defaults.timeout = ACME_REQUEST_TIMEOUT_MS

/** One client per account, kept between orders: it caches the CA's directory and nonces. */
let cached: { account: string; client: AcmeClient.Client } | undefined
/** Per request id: the order waiting for the primary to act on its challenge. */
const waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>()

port.on('message', (message: ToThread) => {
  switch (message.type) {
    case 'order':
      void order(message.id, message.account, message.host, message.challengeType, message.thumbprint)
      return
    case 'register':
      void register(message.id, message.account)
      return
    case 'ack': {
      const pending = waiting.get(message.id)
      waiting.delete(message.id)
      if (message.error === undefined) pending?.resolve()
      else pending?.reject(new Error(message.error))
      return
    }
  }
})

async function order(id: number, account: AcmeAccount, host: string, challengeType: string, thumbprint: string): Promise<void> {
  try {
    const client = clientFor(account)
    const [key, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] }, await acme.crypto.createPrivateEcdsaKey())
    const cert = await client.auto({
      csr,
      email: account.email,
      termsOfServiceAgreed: true,
      challengePriority: [challengeType],
      // The workers answer from the thumbprint; a self-check from here would test our own DNS view only.
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if ((challenge.type as string) === 'tls-alpn-01') {
          const [alpnKey, alpnCert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, await acme.crypto.createPrivateEcdsaKey())
          const alpn = { cert: alpnCert.toString(), key: alpnKey.toString() }
          await ask({ type: 'challenge', id, challengeType: challenge.type, alpn, keyAuthorizationMatches: true })
        } else {
          const keyAuthorizationMatches = keyAuthorization === `${challenge.token}.${thumbprint}`
          await ask({ type: 'challenge', id, challengeType: challenge.type, keyAuthorizationMatches })
        }
      },
      challengeRemoveFn: () => ask({ type: 'challenge-removed', id }),
    })
    port.postMessage({ type: 'issued', id, cert, key: key.toString(), accountUrl: client.getAccountUrl() } satisfies FromThread)
  } catch (err) {
    port.postMessage({ type: 'failed', id, error: describeOrderError(err, account.directoryUrl) } satisfies FromThread)
  }
}

/** Registers the account key anew, for an account the CA no longer knows. */
async function register(id: number, account: AcmeAccount): Promise<void> {
  const client = newClient({ ...account, url: undefined })
  let answeredWithError: string | undefined
  try {
    await client.createAccount({ termsOfServiceAgreed: true, contact: account.email ? [`mailto:${account.email}`] : undefined })
  } catch (err) {
    // A CA that still has an account for this key answers with its URL, and the library then
    // sends an empty update, which some CAs refuse: the URL is known all the same.
    answeredWithError = oneLine(err)
  }
  let accountUrl: string
  try {
    accountUrl = client.getAccountUrl()
  } catch (err) {
    port.postMessage({ type: 'registered', id, accountUrl: undefined, answeredWithError, error: oneLine(err) } satisfies FromThread)
    return
  }
  cached = { account: accountKey({ ...account, url: accountUrl }), client }
  port.postMessage({ type: 'registered', id, accountUrl, answeredWithError } satisfies FromThread)
}

/** Tells the primary about a challenge and waits until it has acted on it. */
function ask(message: FromThread): Promise<void> {
  return new Promise((resolve, reject) => {
    waiting.set(message.id, { resolve, reject })
    port.postMessage(message)
  })
}

function clientFor(account: AcmeAccount): AcmeClient.Client {
  const key = accountKey(account)
  if (cached?.account !== key) cached = { account: key, client: newClient(account) }
  return cached.client
}

function newClient(account: AcmeAccount): AcmeClient.Client {
  return new acme.Client({
    directoryUrl: account.directoryUrl,
    accountKey: account.keyPem,
    accountUrl: account.url,
    // Poll an order's status from 1 s on (the library's default starts at 5 s).
    backoffMin: 1_000,
    backoffMax: 10_000,
  })
}

function accountKey(account: AcmeAccount): string {
  return `${account.directoryUrl}\n${account.url ?? ''}\n${account.keyPem}`
}
