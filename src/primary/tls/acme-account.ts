/**
 * The ACME account: one key per directory, created once and reused for ever (a fleet shares it
 * through the store), and the URL the CA registered it under. This is the account's record only:
 * whatever signs with the key (orders, registration) runs in the ACME thread (acme-thread.ts), so
 * the primary never loads acme-client. A CA that lost the account has the same key registered again.
 */
import { createHash, createPublicKey, generateKeyPair } from 'node:crypto'
import { promisify } from 'node:util'
import { oneLine } from '../../errors'
import { log } from '../../lib/logger'
import type { AcmeOptions } from '../../server-options'
import type { CertificateStore } from './certificate-files'
import { isUnknownAccount } from './acme-schedule'
import type { AcmeThread } from './acme-thread'
import type { AcmeAccount } from './acme-thread-messages'

const generateKeyPairAsync = promisify(generateKeyPair)

export class AcmeAccountClient {
  readonly #options: AcmeOptions
  readonly #store: CertificateStore
  readonly #thread: Pick<AcmeThread, 'register'>
  #keyPem = ''
  #url: string | undefined
  #thumbprint = ''

  /** `thread` registers the key again when the CA lost the account. */
  constructor(options: AcmeOptions, store: CertificateStore, thread: Pick<AcmeThread, 'register'>) {
    this.#options = options
    this.#store = store
    this.#thread = thread
  }

  /** Reads the account from the store, creating its key the first time. */
  async load(): Promise<void> {
    const directoryUrl = this.#options.directoryUrl
    let account = await this.#store.loadAccount(directoryUrl)
    if (!account) {
      // Off the event loop: an RSA key takes ~80 ms to generate.
      const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 })
      const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()
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

  /** What the ACME thread acts for. */
  record(): AcmeAccount {
    return { directoryUrl: this.#options.directoryUrl, keyPem: this.#keyPem, url: this.#url, email: this.#options.email }
  }

  /** Stores the URL the CA gave the account (with an issued certificate, say), when it is new. */
  async saveUrl(url: string): Promise<void> {
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
    try {
      const registration = await this.#thread.register(this.record())
      // A CA that still has an account for this key answers with its URL, and the library then
      // sends an empty update, which some CAs refuse: the URL is known all the same.
      if (registration.answeredWithError) {
        log('debug', 'acme account registration answered with an error', { host, error: registration.answeredWithError })
      }
      if (!registration.accountUrl) throw new Error(registration.error ?? 'the CA gave no account URL')
      await this.saveUrl(registration.accountUrl)
      return true
    } catch (registerErr) {
      log('error', 'acme account could not be registered again', { host, error: oneLine(registerErr) })
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
