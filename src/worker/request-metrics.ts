/**
 * What a worker counts for Prometheus, per service: requests by method and status, their
 * duration, what is in flight, and upstream errors by kind. The primary asks each worker for
 * these (as prom-client's JSON, see `toJSON`) and sums them over the workers.
 *
 * Counting runs once per request, so it costs no allocation once a service has seen a method
 * and a status: a method is an index, the counts sit in typed arrays and a Map keyed by the
 * numeric status. (prom-client's own metric children would build a label hash per call.)
 */
import type { MetricJson, MetricJsonValue } from '../ipc/messages'
import { UPSTREAM_ERROR_KINDS, type UpstreamErrorKind } from './proxy-errors'
import { isPath } from './router'

/** Methods counted under their own name; anything else (extension methods, typos) is `OTHER`. */
export const METRIC_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'OTHER'] as const
export type MetricMethod = (typeof METRIC_METHODS)[number]
const OTHER = METRIC_METHODS.length - 1

/**
 * Upper bounds of the duration histogram, in seconds: from a proxied hit on a local app (1 ms)
 * up to the default target timeout (30 s).
 */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

export const REQUESTS_TOTAL = 'mproxy_http_requests_total'
export const REQUEST_DURATION = 'mproxy_http_request_duration_seconds'
export const IN_FLIGHT = 'mproxy_http_in_flight_requests'
export const UPSTREAM_ERRORS = 'mproxy_upstream_errors_total'

/** Index of a method in METRIC_METHODS; a switch, so that no string is built. */
export function methodIndex(method: string | undefined): number {
  switch (method) {
    case 'GET': return 0
    case 'HEAD': return 1
    case 'POST': return 2
    case 'PUT': return 3
    case 'PATCH': return 4
    case 'DELETE': return 5
    case 'CONNECT': return 6
    case 'OPTIONS': return 7
    case 'TRACE': return 8
    default: return OTHER
  }
}

export function normalizeMethod(method: string | undefined): MetricMethod {
  return METRIC_METHODS[methodIndex(method)]
}

/**
 * Whether a request target (`/path?query`, as the app sees it) is one of the service's excluded
 * paths: the path must be equal, whatever the query. No string is built.
 */
export function isExcludedPath(target: string, excluded: readonly string[]): boolean {
  for (const path of excluded) if (isPath(target, path)) return true
  return false
}

/** The counts of one service and method. */
class MethodCounts {
  /** Requests per status code. */
  readonly statuses = new Map<number, number>()
  /** Per bucket (not cumulative), the last one past the largest bound. */
  readonly buckets = new Float64Array(DURATION_BUCKETS_SECONDS.length + 1)
  /** [sum of durations in seconds, number of durations]. */
  readonly duration = new Float64Array(2)
}

export class ServiceMetrics {
  readonly name: string
  /** Requests (and upgraded connections) inside the service now, held ones included. */
  inflight = 0
  readonly #methods: (MethodCounts | undefined)[] = new Array<MethodCounts | undefined>(METRIC_METHODS.length).fill(undefined)
  readonly #errors = new Float64Array(UPSTREAM_ERROR_KINDS.length)

  constructor(name: string) {
    this.name = name
  }

  /** A request entered the service. */
  start(): void {
    this.inflight++
  }

  /** A request that `start`ed ended, with `status` after `durationMs` (see `count`). */
  finish(method: string | undefined, status: number, durationMs?: number): void {
    this.inflight--
    this.count(method, status, durationMs)
  }

  /**
   * Counts an answered request. Without `durationMs` it stays out of the histogram: an upgraded
   * connection's lifetime is no response time.
   */
  count(method: string | undefined, status: number, durationMs?: number): void {
    const index = methodIndex(method)
    const counts = this.#methods[index] ?? (this.#methods[index] = new MethodCounts())
    counts.statuses.set(status, (counts.statuses.get(status) ?? 0) + 1)
    if (durationMs === undefined) return
    const seconds = durationMs / 1000
    let bucket = 0
    while (bucket < DURATION_BUCKETS_SECONDS.length && seconds > DURATION_BUCKETS_SECONDS[bucket]) bucket++
    counts.buckets[bucket]++
    counts.duration[0] += seconds
    counts.duration[1]++
  }

  upstreamError(kind: UpstreamErrorKind): void {
    this.#errors[UPSTREAM_ERROR_KINDS.indexOf(kind)]++
  }

  /** Appends this service's series to the metrics' values. */
  collect(requests: MetricJsonValue[], durations: MetricJsonValue[], errors: MetricJsonValue[]): void {
    const service = this.name
    this.#methods.forEach((counts, index) => {
      if (!counts) return
      const method = METRIC_METHODS[index]
      for (const [status, value] of counts.statuses) requests.push({ value, labels: { service, method, status: String(status) } })
      if (counts.duration[1] === 0) return
      let cumulative = 0
      DURATION_BUCKETS_SECONDS.forEach((le, bucket) => {
        cumulative += counts.buckets[bucket]
        durations.push({ value: cumulative, labels: { service, method, le }, metricName: `${REQUEST_DURATION}_bucket` })
      })
      const labels = { service, method }
      durations.push(
        { value: counts.duration[1], labels: { ...labels, le: '+Inf' }, metricName: `${REQUEST_DURATION}_bucket` },
        { value: counts.duration[0], labels, metricName: `${REQUEST_DURATION}_sum` },
        { value: counts.duration[1], labels, metricName: `${REQUEST_DURATION}_count` },
      )
    })
    // Unrouted requests (service "") reach no upstream.
    if (service !== '') UPSTREAM_ERROR_KINDS.forEach((kind, index) => errors.push({ value: this.#errors[index], labels: { service, kind } }))
  }
}

export class RequestMetrics {
  readonly #services = new Map<string, ServiceMetrics>()

  /** The metrics of a service, kept for as long as the worker lives (a removed service's counts stay). */
  service(name: string): ServiceMetrics {
    let metrics = this.#services.get(name)
    if (!metrics) {
      metrics = new ServiceMetrics(name)
      this.#services.set(name, metrics)
    }
    return metrics
  }

  /**
   * The counts as prom-client's `registry.getMetricsAsJSON()` gives them, for the primary to sum
   * with AggregatorRegistry.aggregate. `countersOnly`: without the in-flight gauge (the final
   * counts of a worker that stops, which the primary carries on).
   */
  toJSON(countersOnly = false): MetricJson[] {
    const requests: MetricJsonValue[] = []
    const durations: MetricJsonValue[] = []
    const errors: MetricJsonValue[] = []
    for (const service of this.#services.values()) service.collect(requests, durations, errors)
    const metrics: MetricJson[] = [
      { name: REQUESTS_TOTAL, help: 'Requests answered, by service, method and status (499: the client left first)', type: 'counter', aggregator: 'sum', values: requests },
      { name: REQUEST_DURATION, help: 'Time from a request\'s arrival to the end of its response, in seconds', type: 'histogram', aggregator: 'sum', values: durations },
      { name: UPSTREAM_ERRORS, help: 'Requests that failed upstream, by service and kind', type: 'counter', aggregator: 'sum', values: errors },
    ]
    if (!countersOnly) {
      const inflight = [...this.#services.values()].map((service) => ({ value: service.inflight, labels: { service: service.name } }))
      metrics.push({ name: IN_FLIGHT, help: 'Requests and upgraded connections in flight, by service (requests held by a pause included)', type: 'gauge', aggregator: 'sum', values: inflight })
    }
    return metrics
  }
}
