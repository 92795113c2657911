/** How a host's certificate stands, as `mproxy list` shows it. */
export interface CertificateStatus {
  /**
   * `valid`: served. `pending`: being ordered, a self-signed one stands in. `failing`: the last
   * order (or loading the provided files) failed, see `error`.
   */
  state: 'valid' | 'pending' | 'failing'
  source: 'custom' | 'acme'
  /** ISO date. */
  notAfter?: string
  /** The last error, also while a valid certificate is still served. */
  error?: string
}

export interface HostCertificateStatus extends CertificateStatus {
  host: string
}
