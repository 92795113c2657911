/**
 * prom-client's default metrics of one process (CPU, memory, event-loop lag, handles, GC), for
 * the primary and each worker; the primary sums them over all of its processes. prom-client is
 * loaded only by a proxy that serves metrics.
 */
import type { Registry } from 'prom-client'
import type { MetricJson } from '../ipc/messages'

/** A registry with this process's default metrics, collecting from now on. */
export function processMetricsRegistry(): Registry {
  const prom = require('prom-client') as typeof import('prom-client')
  const registry = new prom.Registry()
  prom.collectDefaultMetrics({ register: registry })
  return registry
}

/** The registry's metrics as JSON that survives IPC: values that are not finite numbers are left out. */
export async function metricsAsJson(registry: Registry): Promise<MetricJson[]> {
  const metrics = (await registry.getMetricsAsJSON()) as unknown as MetricJson[]
  return metrics.map((metric) => ({
    name: metric.name,
    help: metric.help,
    type: metric.type,
    aggregator: metric.aggregator,
    values: metric.values.filter((value) => Number.isFinite(value.value)),
  }))
}
