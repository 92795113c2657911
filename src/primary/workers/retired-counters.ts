/**
 * The counters of workers that are gone (replaced by a reload, stopped, crashed), summed. A
 * scrape adds them to the live workers' own, so that a counter summed over the workers never
 * goes down when one of them is replaced: Prometheus would take the drop for a restart from zero
 * and count the remaining workers' totals as new requests.
 *
 * Only mproxy's own counters and histograms are kept: gauges (in flight) end with the worker,
 * and process metrics belong to the process.
 */
import type { MetricJson, MetricJsonValue } from '../../ipc/messages'

export class RetiredCounters {
  /** By metric name: the metric, and its summed values by series. */
  readonly #metrics = new Map<string, { metric: Omit<MetricJson, 'values'>; series: Map<string, MetricJsonValue> }>()

  add(metrics: readonly MetricJson[]): void {
    for (const { values, ...metric } of metrics) {
      if (!metric.name.startsWith('mproxy_') || (metric.type !== 'counter' && metric.type !== 'histogram')) continue
      let entry = this.#metrics.get(metric.name)
      if (!entry) {
        entry = { metric, series: new Map() }
        this.#metrics.set(metric.name, entry)
      }
      for (const value of values) {
        const key = seriesKey(value)
        const sum = entry.series.get(key)
        if (sum) sum.value += value.value
        else entry.series.set(key, { ...value, labels: { ...value.labels } })
      }
    }
  }

  /** The sums, in prom-client's JSON form. */
  get metrics(): MetricJson[] {
    return [...this.#metrics.values()].map(({ metric, series }) => ({ ...metric, values: [...series.values()] }))
  }
}

/** One series: its name (`_bucket`, `_sum`...) and labels, in any order. */
function seriesKey({ metricName, labels }: MetricJsonValue): string {
  return JSON.stringify([metricName ?? '', Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1))])
}
