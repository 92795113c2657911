/** How each service stands, as `mproxy list` shows it: its options, targets and certificates. */
import type { HealthCheckOptions } from '../../options'
import type { HostCertificateStatus } from '../tls/certificate-status'
import type { TargetState } from './target'

export interface TargetStatus {
  address: string
  health: TargetState
  /** Requests and upgraded sockets in flight, summed over all workers. */
  inflight: number
}

export interface ServiceStatus {
  name: string
  hosts: string[]
  targets: TargetStatus[]
  tls: boolean
  /** One entry per host for automatic certificates; one for a provided certificate. */
  certificates: HostCertificateStatus[]
  healthCheck: HealthCheckOptions
  drainTimeoutMs: number
  drainWebSockets: boolean
  targetTimeoutMs: number
}
