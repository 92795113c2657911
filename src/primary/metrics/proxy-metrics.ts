/**
 * The metrics `--metrics-port` serves: the primary's own (deploys, target health, certificate
 * expiry, fleet nodes, its process) and its workers' (requests, durations, in flight, upstream
 * errors, their processes), summed with prom-client's AggregatorRegistry.aggregate.
 *
 * Workers are asked over mproxy's own typed IPC rather than prom-client's cluster messages:
 * their answers are checked like every other message, a worker that is stopping or too busy to
 * answer is handled (see Supervisor.metrics), and the counters of replaced workers carry on.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { ServiceStatus } from '../../control/protocol'
import { oneLine } from '../../errors'
import type { MetricJson } from '../../ipc/messages'
import { log } from '../../lib/logger'
import { metricsAsJson, processMetricsRegistry } from '../../lib/process-metrics'

/** How long a scrape waits for each worker; one that takes longer counts with its previous answer. */
const WORKER_ANSWER_TIMEOUT_MS = 2_000
/** Deploys take from a second (health check) to minutes (slow boots, long drains). */
const DEPLOY_BUCKETS_SECONDS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

export type DeployResult = 'success' | 'failure'

/** Where the primary's metrics come from. */
export interface MetricsSources {
  /** The workers' metrics, and the counters of workers gone (Supervisor.metrics). */
  workerMetrics(timeoutMs: number): Promise<MetricJson[][]>
  /** The services as `list` shows them: target health and certificates. */
  services(): ServiceStatus[]
  /** With Redis: how many nodes of the fleet are alive. */
  liveNodes?(): Promise<number>
}

export class ProxyMetrics {
  readonly #registry: Registry
  readonly #sources: MetricsSources
  readonly #deploys: Counter<'service' | 'result'>
  readonly #deployDuration: Histogram<'service' | 'result'>

  constructor(sources: MetricsSources) {
    this.#sources = sources
    const registers = [this.#registry = processMetricsRegistry()]
    this.#deploys = new Counter({
      name: 'mproxy_deploys_total', help: 'Deploys made through this node, by service and result', labelNames: ['service', 'result'], registers,
    })
    this.#deployDuration = new Histogram({
      name: 'mproxy_deploy_duration_seconds', help: 'How long deploys made through this node took, health checks and drain included',
      labelNames: ['service', 'result'], buckets: DEPLOY_BUCKETS_SECONDS, registers,
    })
    new Gauge({
      name: 'mproxy_target_healthy', help: 'Whether a target passes its health checks (1) or not (0)', labelNames: ['service', 'target'], registers,
      collect() {
        this.reset()
        for (const service of sources.services()) {
          // Draining targets get no traffic whatever their health.
          for (const target of service.targets) if (target.health !== 'draining') this.set({ service: service.name, target: target.address }, target.health === 'healthy' ? 1 : 0)
        }
      },
    })
    new Gauge({
      name: 'mproxy_certificate_expiry_timestamp_seconds', help: 'When the certificate served for a host expires (Unix time)', labelNames: ['host'], registers,
      collect() {
        this.reset()
        for (const certificate of sources.services().flatMap((service) => service.certificates)) {
          if (!certificate.notAfter) continue
          // A provided certificate is listed once for all the hosts it covers.
          for (const host of certificate.host.split(',')) this.set({ host }, Date.parse(certificate.notAfter) / 1000)
        }
      },
    })
    if (sources.liveNodes) {
      const liveNodes = sources.liveNodes.bind(sources)
      new Gauge({
        name: 'mproxy_fleet_nodes_alive', help: 'Nodes of the fleet sharing this Redis that are alive', registers,
        async collect() {
          try {
            this.set(await liveNodes())
          } catch (err) {
            // Unknown is no series at all (values that are not finite are left out), rather than 0.
            this.set(Number.NaN)
            log('debug', 'metrics: fleet nodes unknown', { error: oneLine(err) })
          }
        },
      })
    }
  }

  get contentType(): string {
    return this.#registry.contentType
  }

  /** A deploy made through this node ended. */
  deployed(service: string, result: DeployResult, durationMs: number): void {
    this.#deploys.inc({ service, result })
    this.#deployDuration.observe({ service, result }, durationMs / 1000)
  }

  /** The Prometheus text of everything, summed over the primary and its workers. */
  async render(): Promise<string> {
    const [own, workers] = await Promise.all([metricsAsJson(this.#registry), this.#sources.workerMetrics(WORKER_ANSWER_TIMEOUT_MS)])
    return AggregatorRegistry.aggregate([own, ...workers]).metrics()
  }
}
