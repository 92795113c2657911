/**
 * Which certificate each TLS service serves: a provided one (`--tls-certificate-path`), or
 * automatic ones from the ACME CA, one per host, with a self-signed stand-in until issued.
 * The registry asks this module for the certificate parts of route tables and of `list`.
 */
import type { HostCertificateStatus, CertificateStatus } from './certificate-status'
import { InvalidOptionError, oneLine } from '../../errors'
import type { RouteCertificate } from '../../ipc/messages'
import { log } from '../../lib/logger'
import type { ServiceSpec } from '../../options'
import { loadCertificate, type LoadedCertificate } from './certificate'
import { createSelfSigned, prepareStandInKey } from './self-signed'

/** What the ACME manager offers; undefined when mproxy runs without it. */
export interface CertificateAuthority {
  readonly thumbprint: string
  manage(hosts: Iterable<string>): void
  certificateFor(host: string): { cert: string; key: string } | undefined
  status(host: string): CertificateStatus
  /** Open TLS-ALPN-01 challenges: certificates for validators offering `acme-tls/1`. */
  tlsChallenges(): RouteCertificate[]
}

/** A service's certificate source, decided at deploy (or restore) time. */
export type ServiceCertificate =
  | { kind: 'none' }
  | { kind: 'provided'; loaded?: LoadedCertificate; error?: string }
  | { kind: 'automatic' }

export class ServiceCertificates {
  readonly #authority: CertificateAuthority | undefined
  readonly #httpsError: () => string | undefined
  readonly #standIns = new Map<string, { cert: string; key: string }>()

  constructor(authority: CertificateAuthority | undefined, httpsError: () => string | undefined) {
    this.#authority = authority
    this.#httpsError = httpsError
  }

  get thumbprint(): string {
    return this.#authority?.thumbprint ?? ''
  }

  tlsChallenges(): RouteCertificate[] {
    return this.#authority?.tlsChallenges() ?? []
  }

  /** For a deploy: checks provided files now, so a bad file fails the deploy. */
  prepare(spec: ServiceSpec): ServiceCertificate {
    if (!spec.tls) return { kind: 'none' }
    const httpsError = this.#httpsError()
    if (httpsError) throw new InvalidOptionError(`cannot serve TLS: the HTTPS listener is not running (${httpsError})`)
    if (spec.tlsCertificatePath && spec.tlsPrivateKeyPath) {
      return { kind: 'provided', loaded: loadCertificate(spec.tlsCertificatePath, spec.tlsPrivateKeyPath, spec.hosts) }
    }
    if (!this.#authority) throw new InvalidOptionError('automatic certificates are off in this proxy; give --tls-certificate-path and --tls-private-key-path')
    // Ready by the time the deploy switches, after its health checks.
    void prepareStandInKey()
    return { kind: 'automatic' }
  }

  /** At start: a provided certificate that cannot be loaded costs its service HTTPS, not the proxy. */
  restore(spec: ServiceSpec): ServiceCertificate {
    if (!spec.tls) return { kind: 'none' }
    if (!spec.tlsCertificatePath || !spec.tlsPrivateKeyPath) {
      void prepareStandInKey()
      return { kind: 'automatic' }
    }
    try {
      return { kind: 'provided', loaded: loadCertificate(spec.tlsCertificatePath, spec.tlsPrivateKeyPath, spec.hosts) }
    } catch (err) {
      log('error', 'certificate unavailable, serving the service over HTTP only', { service: spec.name, error: oneLine(err) })
      return { kind: 'provided', error: oneLine(err) }
    }
  }

  /** Tells the CA which hosts need certificates now; the others stop being renewed. */
  manage(services: Iterable<{ spec: ServiceSpec; certificate: ServiceCertificate }>): void {
    const hosts = [...services].filter((s) => s.certificate.kind === 'automatic').flatMap((s) => s.spec.hosts)
    this.#authority?.manage(hosts)
    // Hosts come and go with deploys: their stand-ins must not pile up.
    const wanted = new Set(hosts)
    for (const host of this.#standIns.keys()) if (!wanted.has(host)) this.#standIns.delete(host)
  }

  routeCertificates(services: Iterable<{ spec: ServiceSpec; certificate: ServiceCertificate }>): RouteCertificate[] {
    const certificates: RouteCertificate[] = []
    for (const { spec, certificate } of services) {
      if (certificate.kind === 'provided' && certificate.loaded) {
        certificates.push({ hosts: spec.hosts, cert: certificate.loaded.cert, key: certificate.loaded.key })
      } else if (certificate.kind === 'automatic') {
        for (const host of spec.hosts) certificates.push({ hosts: [host], ...(this.#authority?.certificateFor(host) ?? this.#standIn(host)) })
      }
    }
    return certificates
  }

  /** Plain HTTP is redirected only once HTTPS works for every host of the service. */
  redirects(spec: ServiceSpec, certificate: ServiceCertificate): boolean {
    if (!spec.tlsRedirect) return false
    if (certificate.kind === 'provided') return certificate.loaded !== undefined
    return certificate.kind === 'automatic' && spec.hosts.every((host) => this.#authority?.certificateFor(host) !== undefined)
  }

  status(spec: ServiceSpec, certificate: ServiceCertificate): HostCertificateStatus[] {
    if (certificate.kind === 'provided') {
      const state = certificate.loaded
        ? { state: 'valid' as const, notAfter: certificate.loaded.notAfter.toISOString() }
        : { state: 'failing' as const, error: certificate.error }
      return [{ host: spec.hosts.join(','), source: 'custom', ...state }]
    }
    if (certificate.kind === 'automatic' && this.#authority) {
      const authority = this.#authority
      return spec.hosts.map((host) => ({ host, ...authority.status(host) }))
    }
    return []
  }

  #standIn(host: string): { cert: string; key: string } {
    let standIn = this.#standIns.get(host)
    if (!standIn) {
      standIn = createSelfSigned([host])
      this.#standIns.set(host, standIn)
    }
    return standIn
  }
}
