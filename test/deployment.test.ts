/**
 * The deployment sequence in-process: real upstreams on port 0 answer the health checks, and a
 * registry stand-in records what was routed, published, saved and drained, in which order.
 */
import http from 'node:http'
import { Deployment, type ChangeRules, type DeploymentHost } from '../src/primary/deploys/deployment'
import type { Service } from '../src/primary/deploys/service'
import { Target } from '../src/primary/deploys/target'
import { ServiceCertificates } from '../src/primary/tls/service-certificates'
import { type ServiceSpec } from '../src/options'
import { normalizeServiceSpec } from '../src/service-spec'
import { TargetUnhealthyError } from '../src/errors'
import { waitUntil } from './helpers'

jest.mock('../src/lib/logger', () => ({ ...jest.requireActual('../src/lib/logger'), log: jest.fn() }))

const HEALTH = { path: '/up', intervalMs: 20, timeoutMs: 500 }
const HEALTH_WAIT_MS = 400

interface Upstream {
  address: string
  /** Requests it answered: health probes, here. */
  readonly probes: number
  close(): Promise<void>
}

/** Several health-check intervals: a target still checked would be probed again meanwhile. */
const QUIET_MS = 8 * HEALTH.intervalMs

/** Asserts nothing probes `upstream` any more. */
async function expectNoMoreProbes(upstream: Upstream): Promise<void> {
  const before = upstream.probes
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS))
  expect(upstream.probes).toBe(before)
}

const upstreams: Upstream[] = []
afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((upstream) => upstream.close()))
})

async function startUpstream(status = 200): Promise<Upstream> {
  let probes = 0
  const server = http.createServer((_req, res) => {
    probes++
    res.writeHead(status).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  const upstream = {
    address: `127.0.0.1:${port}`,
    get probes() { return probes },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
  upstreams.push(upstream)
  return upstream
}

/** A registry's part in a deployment, recording each step; in-flight counts set by the test. */
class FakeRegistry implements DeploymentHost {
  readonly services = new Map<string, Service>()
  readonly steps: string[] = []
  readonly counts = new Map<string, number>()
  readonly cutAddresses: string[] = []
  readonly #countListeners = new Set<() => void>()
  readonly certificates = new ServiceCertificates(undefined, () => undefined)
  readonly workers = {
    workerPids: [1, 2],
    inflight: (address: string) => this.counts.get(address) ?? 0,
    onCounts: (listener: () => void) => {
      this.#countListeners.add(listener)
      return () => this.#countListeners.delete(listener)
    },
    cut: (addresses: string[]) => {
      this.cutAddresses.push(...addresses)
      addresses.forEach((address) => this.setCount(address, 0))
    },
  }

  setCount(address: string, count: number): void {
    this.counts.set(address, count)
    this.#countListeners.forEach((listener) => listener())
  }

  current(name: string): Service | undefined {
    return this.services.get(name)
  }

  route(name: string, service: Service | undefined): void {
    this.steps.push(service ? `route ${service.targets.map((t) => t.address).join(',')}` : 'unroute')
    if (service) this.services.set(name, service)
    else this.services.delete(name)
  }

  routedAddresses(): Set<string> {
    return new Set([...this.services.values()].flatMap((s) => s.targets.map((t) => t.address)))
  }

  async publish(): Promise<void> {
    this.steps.push('publish')
  }

  servicesChanged(): void {}

  createTarget(service: Service, address: string): Target {
    return new Target(address, service.spec.healthCheck, this.targetEvents(), 'adding')
  }

  targetEvents() {
    return { onStateChange: () => {} }
  }

  /** A live service on `addresses`, as a restore leaves it. */
  serve(spec: ServiceSpec): Service {
    const service: Service = { spec, certificate: { kind: 'none' }, errorPages: {}, targets: [], readTargets: [], rolloutTargets: [], draining: [] }
    service.targets = spec.targets.map((address) => new Target(address, spec.healthCheck, this.targetEvents(), 'healthy'))
    this.services.set(spec.name, service)
    return service
  }

  stopAll(): void {
    for (const service of this.services.values()) [...service.targets, ...service.draining].forEach((target) => target.stop())
  }
}

function spec(targets: string[], overrides: Partial<ServiceSpec> = {}): ServiceSpec {
  return normalizeServiceSpec({ name: 'web', hosts: ['app.test'], targets, healthCheck: HEALTH, drainTimeoutMs: 300, ...overrides })
}

function rules(registry: FakeRegistry, overrides: Partial<ChangeRules> = {}): ChangeRules & { progressLines: string[] } {
  const progressLines: string[] = []
  return {
    progressLines,
    progress: (line) => progressLines.push(line),
    healthWaitMs: HEALTH_WAIT_MS,
    force: false,
    onUnhealthy: 'fail',
    save: async () => {
      registry.steps.push('save')
      return 7
    },
    undoUnsaved: true,
    awaitPeers: async (revision) => {
      registry.steps.push(`peers ${revision}`)
    },
    ...overrides,
  }
}

describe('Deployment', () => {
  let registry: FakeRegistry
  beforeEach(() => {
    registry = new FakeRegistry()
  })
  afterEach(() => registry.stopAll())

  it('switches only once the new target is healthy, then saves and drains the replaced one', async () => {
    const [old, next] = [await startUpstream(), await startUpstream()]
    registry.serve(spec([old.address]))
    const change = rules(registry)
    const result = await new Deployment(registry, change).deploy(spec([next.address]), { kind: 'none' })

    expect(registry.steps).toEqual([`route ${next.address}`, 'publish', 'save', 'peers 7'])
    expect(result).toMatchObject({ unchanged: false, warnings: [], drained: { cut: 0 } })
    expect(change.progressLines[0]).toMatch(/^waiting for .* to become healthy/)
    expect(change.progressLines).toContain(`switched web to ${next.address} on 2 workers`)
    expect(registry.services.get('web')?.draining).toEqual([])
  })

  it('waits for requests in flight on the replaced target before it resolves', async () => {
    const [old, next] = [await startUpstream(), await startUpstream()]
    registry.serve(spec([old.address], { drainTimeoutMs: 5_000 }))
    registry.setCount(old.address, 2)
    const change = rules(registry)
    const deploying = new Deployment(registry, change).deploy(spec([next.address], { drainTimeoutMs: 5_000 }), { kind: 'none' })
    await waitUntil(() => change.progressLines.some((line) => line.startsWith(`draining ${old.address}: 2 requests`)))
    expect(registry.services.get('web')?.draining.map((t) => t.address)).toEqual([old.address])

    registry.setCount(old.address, 0)
    const result = await deploying
    expect(result.drained.cut).toBe(0)
    expect(registry.cutAddresses).toEqual([])
    expect(registry.services.get('web')?.draining).toEqual([])
  })

  it('cuts what is still in flight at the drain timeout, and says how many', async () => {
    const [old, next] = [await startUpstream(), await startUpstream()]
    registry.serve(spec([old.address], { drainTimeoutMs: 100 }))
    registry.setCount(old.address, 3)
    const change = rules(registry)
    const result = await new Deployment(registry, change).deploy(spec([next.address], { drainTimeoutMs: 100 }), { kind: 'none' })
    expect(result.drained.cut).toBe(3)
    expect(registry.cutAddresses).toEqual([old.address])
    expect(change.progressLines.at(-1)).toMatch(/\(3 cut at the drain timeout\)$/)
  })

  it('refuses an unhealthy target, leaving the service on its previous target and nothing checked', async () => {
    const [old, failing] = [await startUpstream(), await startUpstream(503)]
    registry.serve(spec([old.address]))
    const deploying = new Deployment(registry, rules(registry)).deploy(spec([failing.address]), { kind: 'none' })
    await expect(deploying).rejects.toThrow(TargetUnhealthyError)
    await expect(deploying).rejects.toThrow(/the previous targets keep serving/)
    expect(registry.steps).toEqual([])
    expect(registry.services.get('web')?.targets.map((t) => t.address)).toEqual([old.address])
    await expectNoMoreProbes(failing)
  })

  it('switches anyway with a warning when the rules say the fleet already decided', async () => {
    const failing = await startUpstream(503)
    const result = await new Deployment(registry, rules(registry, { onUnhealthy: 'warn' })).deploy(spec([failing.address]), { kind: 'none' })
    expect(registry.steps).toEqual([`route ${failing.address}`, 'publish', 'save', 'peers 7'])
    expect(result.warnings).toEqual([expect.stringMatching(new RegExp(`^switched although ${failing.address} failed its health checks from there: .*503`))])
  })

  it('refuses the switch when the last check before it fails, and stops checking the new target', async () => {
    const next = await startUpstream()
    const change = rules(registry, { beforeSwitch: () => { throw new Error('host app.test is already used by service other') } })
    await expect(new Deployment(registry, change).deploy(spec([next.address]), { kind: 'none' })).rejects.toThrow(/already used/)
    expect(registry.services.size).toBe(0)
    expect(next.probes).toBeGreaterThan(0)
    await expectNoMoreProbes(next)
  })

  it('routes back to the previous targets when a change made here cannot be saved', async () => {
    const [old, next] = [await startUpstream(), await startUpstream()]
    const previous = registry.serve(spec([old.address]))
    const change = rules(registry, { save: async () => { throw new Error('redis is away') } })
    await expect(new Deployment(registry, change).deploy(spec([next.address]), { kind: 'none' })).rejects.toThrow('redis is away')
    expect(registry.services.get('web')).toBe(previous)
    expect(registry.steps).toEqual([`route ${next.address}`, 'publish', `route ${old.address}`, 'publish'])
    expect(change.progressLines.at(-1)).toBe(`the change could not be saved: web is back on ${old.address}`)
  })

  it('keeps a change from the fleet that cannot be saved here, and still drains what it replaced', async () => {
    const [old, next] = [await startUpstream(), await startUpstream()]
    registry.serve(spec([old.address]))
    const change = rules(registry, { undoUnsaved: false, save: async () => { throw new Error('disk full') } })
    const result = await new Deployment(registry, change).deploy(spec([next.address]), { kind: 'none' })
    expect(result.drained.cut).toBe(0)
    expect(registry.services.get('web')?.targets.map((t) => t.address)).toEqual([next.address])
    expect(registry.services.get('web')?.draining).toEqual([])
  })

  it('applies new options to the same target without a health wait', async () => {
    const live = await startUpstream()
    registry.serve(spec([live.address]))
    const change = rules(registry)
    const result = await new Deployment(registry, change).deploy(spec([live.address], { targetTimeoutMs: 1_000 }), { kind: 'none' })
    expect(result.unchanged).toBe(true)
    expect(change.progressLines).toEqual([`${live.address} is already live for web: applied the new options`])
    expect(registry.services.get('web')?.spec.targetTimeoutMs).toBe(1_000)
  })

  it('removes a service: stops routing first, then saves, and resolves once its targets drained', async () => {
    const live = await startUpstream()
    const service = registry.serve(spec([live.address], { drainTimeoutMs: 5_000 }))
    registry.setCount(live.address, 1)
    const change = rules(registry)
    let removed = false
    const removing = new Deployment(registry, change).remove(service).then(() => { removed = true })
    await waitUntil(() => registry.steps.includes('peers 7'))
    expect(registry.steps).toEqual(['unroute', 'publish', 'save', 'peers 7'])
    expect(removed).toBe(false)
    registry.setCount(live.address, 0)
    await removing
    expect(change.progressLines[0]).toBe('stopped routing to web')
    expect(change.progressLines.at(-1)).toMatch(new RegExp(`^drained ${live.address} after`))
  })
})
