/**
 * The ACME account: one key per directory, created once and reused for ever (a fleet shares it
 * through the store), the URL the CA registered it under, and the acme-client Client that signs
 * with it. A CA that lost the account has the same key registered again.
 */
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto'
import type AcmeClient from 'acme-client'
import { oneLine } from '../../errors'
import { log } from '../../lib/logger'
import type { AcmeOptions } from '../../server-options'
import type { CertificateStore } from './certificate-files'
import { isUnknownAccount } from './acme-schedule'

/** A CA that accepts a connection and never answers must not hold a host's order for ever. */
const ACME_REQUEST_TIMEOUT_MS = 30_000

export class AcmeAccountClient {
  readonly #options: AcmeOptions
  readonly #store: CertificateStore
  #keyPem = ''
  #url: string | undefined
  #thumbprint = ''
  #client: AcmeClient.Client | undefined

  constructor(options: AcmeOptions, store: CertificateStore) {
    this.#options = options
    this.#store = store
  }

  /** Reads the account from the store, creating its key the first time. */
  async load(): Promise<void> {
    const directoryUrl = this.#options.directoryUrl
    let account = await this.#store.loadAccount(directoryUrl)
    if (!account) {
      const keyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()
      account = await this.#store.createAccount({ directoryUrl, keyPem })
      if (account.keyPem === keyPem) log('info', 'acme account key created', { directory: directoryUrl })
    }
    this.#keyPem = account.keyPem
    this.#url = account.url
    this.#thumbprint = thumbprint(this.#keyPem)
  }

  /** What workers append to a token to answer an HTTP-01 challenge. */
  get thumbprint(): string {
    return this.#thumbprint
  }

  /** The ACME library is loaded on first use: a proxy without automatic certificates saves ~15 MiB. */
  async client(): Promise<{ acme: typeof AcmeClient; client: AcmeClient.Client }> {
    const acme = (await import('acme-client')).default
    // mproxy retries on its own schedule; the library's own retries would hold an order for minutes.
    ;(acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0
    acme.axios.defaults.timeout = ACME_REQUEST_TIMEOUT_MS
    this.#client ??= new acme.Client({
      directoryUrl: this.#options.directoryUrl,
      accountKey: this.#keyPem,
      accountUrl: this.#url,
      // Poll an order's status from 1 s on (the library's default starts at 5 s).
      backoffMin: 1_000,
      backoffMax: 10_000,
    })
    return { acme, client: this.#client }
  }

  /** Stores the URL `client` was registered under, when it is new. */
  async saveUrl(client: AcmeClient.Client): Promise<void> {
    const url = client.getAccountUrl()
    if (this.#url === url) return
    this.#url = url
    await this.#store.saveAccount({ directoryUrl: this.#options.directoryUrl, keyPem: this.#keyPem, url })
  }

  /**
   * When `err` (from an order of `host`) says the CA does not know the account (a reset, a
   * deactivation), registers the same key again rather than failing every order for ever. True
   * when it did and the order may be tried again.
   */
  async recoverUnknown(err: unknown, host: string): Promise<boolean> {
    if (this.#url === undefined || !isUnknownAccount(err)) return false
    log('warn', 'acme account unknown to the CA, registering it again', { account: this.#url, error: oneLine(err) })
    this.#url = undefined
    this.#client = undefined
    const { client } = await this.client()
    try {
      await client.createAccount({ termsOfServiceAgreed: true, contact: this.#options.email ? [`mailto:${this.#options.email}`] : undefined })
    } catch (registerErr) {
      // A CA that still has an account for this key answers with its URL, and the library then
      // sends an empty update, which some CAs refuse: the URL is known all the same.
      log('debug', 'acme account registration answered with an error', { host, error: oneLine(registerErr) })
    }
    try {
      await this.saveUrl(client)
      return true
    } catch (saveErr) {
      log('error', 'acme account could not be registered again', { host, error: oneLine(saveErr) })
      return false
    }
  }
}

/** RFC 7638 JWK thumbprint of the account key, base64url. */
export function thumbprint(accountKeyPem: string): string {
  const jwk = createPublicKey(accountKeyPem).export({ format: 'jwk' })
  const canonical = jwk.kty === 'EC'
    ? JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
    : JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })
  return createHash('sha256').update(canonical).digest('base64url')
}
