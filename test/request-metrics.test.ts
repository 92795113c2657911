import { AggregatorRegistry } from 'prom-client'
import type { MetricJson } from '../src/ipc/messages'
import { RetiredCounters } from '../src/primary/workers/retired-counters'
import { RequestMetrics, isExcludedPath, normalizeMethod } from '../src/worker/request-metrics'

describe('normalizeMethod', () => {
  it.each([
    ['GET', 'GET'], ['HEAD', 'HEAD'], ['POST', 'POST'], ['PUT', 'PUT'], ['PATCH', 'PATCH'], ['DELETE', 'DELETE'],
    ['CONNECT', 'CONNECT'], ['OPTIONS', 'OPTIONS'], ['TRACE', 'TRACE'],
    ['PROPFIND', 'OTHER'], ['CUSTOM', 'OTHER'], ['OTHER', 'OTHER'], ['get', 'OTHER'], ['', 'OTHER'], [undefined, 'OTHER'],
  ])('%p → %s', (method, expected) => {
    expect(normalizeMethod(method)).toBe(expected)
  })
})

describe('isExcludedPath', () => {
  it.each([
    ['the path itself', '/up', ['/up'], true],
    ['the path with a query', '/up?x=1', ['/up'], true],
    ['a path below it', '/up/nested', ['/up'], false],
    ['a longer name', '/upstairs', ['/up'], false],
    ['another path of the list', '/metrics', ['/up', '/metrics'], true],
    ['anything, with no list', '/up', [], false],
  ])('%s', (_case, target, excluded, expected) => {
    expect(isExcludedPath(target, excluded)).toBe(expected)
  })
})

/** The values of one metric, as `labels → value` lines. */
function series(metrics: MetricJson[], name: string): Record<string, number> {
  const metric = metrics.find((m) => m.name === name)
  return Object.fromEntries((metric?.values ?? []).map((v) => [`${v.metricName ?? name}${JSON.stringify(v.labels)}`, v.value]))
}

describe('RequestMetrics', () => {
  it('counts requests by method and status, their durations, in flight and upstream errors', () => {
    const metrics = new RequestMetrics()
    const web = metrics.service('web')
    web.start()
    web.start()
    web.finish('GET', 200, 3)
    web.start()
    web.finish('GET', 200, 40)
    web.upstreamError('refused')
    web.count('PROPFIND', 101)
    const json = metrics.toJSON()

    expect(series(json, 'mproxy_http_requests_total')).toEqual({
      'mproxy_http_requests_total{"service":"web","method":"GET","status":"200"}': 2,
      'mproxy_http_requests_total{"service":"web","method":"OTHER","status":"101"}': 1,
    })
    const durations = series(json, 'mproxy_http_request_duration_seconds')
    expect(durations['mproxy_http_request_duration_seconds_bucket{"service":"web","method":"GET","le":0.0025}']).toBe(0)
    expect(durations['mproxy_http_request_duration_seconds_bucket{"service":"web","method":"GET","le":0.005}']).toBe(1)
    expect(durations['mproxy_http_request_duration_seconds_bucket{"service":"web","method":"GET","le":0.05}']).toBe(2)
    expect(durations['mproxy_http_request_duration_seconds_bucket{"service":"web","method":"GET","le":"+Inf"}']).toBe(2)
    expect(durations['mproxy_http_request_duration_seconds_sum{"service":"web","method":"GET"}']).toBeCloseTo(0.043)
    expect(durations['mproxy_http_request_duration_seconds_count{"service":"web","method":"GET"}']).toBe(2)
    // An upgrade (no duration) stays out of the histogram.
    expect(Object.keys(durations).some((key) => key.includes('OTHER'))).toBe(false)
    expect(series(json, 'mproxy_http_in_flight_requests')).toEqual({ 'mproxy_http_in_flight_requests{"service":"web"}': 1 })
    expect(series(json, 'mproxy_upstream_errors_total')['mproxy_upstream_errors_total{"service":"web","kind":"refused"}']).toBe(1)
  })

  it('leaves the in-flight gauge out of the final counters', () => {
    const metrics = new RequestMetrics()
    metrics.service('web').count('GET', 200, 1)
    expect(metrics.toJSON(true).map((m) => m.name)).toEqual(['mproxy_http_requests_total', 'mproxy_http_request_duration_seconds', 'mproxy_upstream_errors_total'])
  })

  it('renders as Prometheus text once summed by prom-client', async () => {
    const [one, two] = [new RequestMetrics(), new RequestMetrics()]
    one.service('web').count('GET', 200, 1)
    two.service('web').count('GET', 200, 2000)
    const text = await AggregatorRegistry.aggregate([one.toJSON(), two.toJSON()]).metrics()
    expect(text).toContain('mproxy_http_requests_total{service="web",method="GET",status="200"} 2')
    expect(text).toContain('mproxy_http_request_duration_seconds_bucket{service="web",method="GET",le="0.001"} 1')
    expect(text).toContain('mproxy_http_request_duration_seconds_bucket{service="web",method="GET",le="2.5"} 2')
    expect(text).toContain('mproxy_http_request_duration_seconds_count{service="web",method="GET"} 2')
  })
})

describe('RetiredCounters', () => {
  it('sums the counters of workers gone, series by series, and keeps no gauge', () => {
    const [one, two] = [new RequestMetrics(), new RequestMetrics()]
    one.service('web').count('GET', 200, 1)
    two.service('web').count('GET', 200, 1)
    two.service('web').count('POST', 502, 1)
    const retired = new RetiredCounters()
    retired.add(one.toJSON())
    retired.add(two.toJSON())
    retired.add([{ name: 'process_cpu_seconds_total', help: '', type: 'counter', aggregator: 'sum', values: [{ value: 3, labels: {} }] }])

    expect(retired.metrics.map((m) => m.name)).toEqual(['mproxy_http_requests_total', 'mproxy_http_request_duration_seconds', 'mproxy_upstream_errors_total'])
    expect(series(retired.metrics, 'mproxy_http_requests_total')).toEqual({
      'mproxy_http_requests_total{"service":"web","method":"GET","status":"200"}': 2,
      'mproxy_http_requests_total{"service":"web","method":"POST","status":"502"}': 1,
    })
    expect(series(retired.metrics, 'mproxy_http_request_duration_seconds')['mproxy_http_request_duration_seconds_count{"service":"web","method":"GET"}']).toBe(2)
  })
})
