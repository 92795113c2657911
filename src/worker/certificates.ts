/**
 * SNI → certificate for a worker, built from each route table. Secure contexts are cached by
 * their PEM, so a new table (sent on every change) does not rebuild them.
 */
import tls from 'node:tls'
import type { RouteCertificate } from '../ipc/messages'
import { Router } from './router'

interface ContextEntry {
  hosts: readonly string[]
  pathPrefixes: readonly string[]
  context: tls.SecureContext
}

export class CertificateSelector {
  #router = new Router<ContextEntry>([])
  #contexts = new Map<string, tls.SecureContext>()

  install(certificates: readonly RouteCertificate[]): void {
    const contexts = new Map<string, tls.SecureContext>()
    const entries = certificates.map(({ hosts, cert, key }) => {
      const id = cert + key
      const context = this.#contexts.get(id) ?? tls.createSecureContext({ cert, key })
      contexts.set(id, context)
      return { hosts, pathPrefixes: ['/'], context }
    })
    this.#contexts = contexts
    // Hosts only: a certificate never stands in for "any host".
    this.#router = new Router(entries.filter((entry) => entry.hosts.length > 0))
  }

  /** For `SNICallback`: names without a certificate fail the handshake. */
  select(servername: string, callback: (err: Error | null, context?: tls.SecureContext) => void): void {
    const entry = this.#router.match(servername, '/')?.service
    if (entry) callback(null, entry.context)
    else callback(new Error(`no certificate for ${servername}`))
  }
}
