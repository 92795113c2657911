import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  collectBodies, defaultHandler, expectAllServedBy, onCleanup, FAST_HEALTH_FLAGS, getBody, makeStateDir, request, runLoad, startBackend, startProxy, startRedis,
  timed, waitUntil, type Backend, type CliResult, type LogLine, type Proxy, type RedisServer, type Response,
} from './helpers'
import { createRedisClient } from '../src/primary/fleet/redis-client'

/**
 * A fleet: several `mproxy run` nodes (n1, n2, n3), each with its own state dir and one worker,
 * sharing one Redis. A deploy or remove through any node is applied by every node.
 */

/** A fleet test starts Redis, two or three proxies and some backends: more than the default. */
const FLEET_TEST_TIMEOUT_MS = 90_000
/** How long a node may take to pick up a change it was not waited for (Redis came back, ...). */
const CATCH_UP_TIMEOUT_MS = 5_000
/** How long nodes may take to log `redis reconnected` after Redis is back (reconnect backoff ≤ 2 s). */
const RECONNECT_TIMEOUT_MS = 10_000
/** How long the request held in flight on the old target takes. */
const SLOW_REQUEST_MS = 2_500
/** Clock slack between the client seeing a response end and the proxy counting it done. */
const CLOCK_SLACK_MS = 100

/** One entry of `nodes` in `list --json` with Redis. */
interface NodeEntry {
  name: string
  self: boolean
  live: boolean
  lastHeartbeatAt: string
  revision: number
}

/** `list --json` with Redis (declared here: the test does not depend on the protocol types). */
interface FleetList {
  services: Array<{ name: string; targets: Array<{ address: string }> }>
  nodes: NodeEntry[]
}

function startNode(redis: RedisServer, name: string, opts: { stateDir?: string } = {}): Promise<Proxy> {
  return startProxy({ workers: 1, stateDir: opts.stateDir, args: ['--redis-url', redis.url, '--node-name', name] })
}

/** Starts nodes n1..nN on `redis` and waits until n1 sees all of them live. */
async function startFleet(redis: RedisServer, count: number): Promise<Proxy[]> {
  const names = Array.from({ length: count }, (_, i) => `n${i + 1}`)
  const nodes = await Promise.all(names.map((name) => startNode(redis, name)))
  await waitForLive(nodes[0], names)
  return nodes
}

async function listFleet(node: Proxy): Promise<FleetList> {
  const result = await node.cli(['list', '--json'])
  if (result.code !== 0) throw new Error(`list --json failed (${result.code}): ${result.stderr}`)
  return JSON.parse(result.stdout) as FleetList
}

/** Waits until `node` lists every one of `names` as live (heartbeats are in Redis). */
async function waitForLive(node: Proxy, names: string[]): Promise<void> {
  await waitUntil(async () => {
    const { nodes } = await listFleet(node)
    return names.every((name) => nodes.some((entry) => entry.name === name && entry.live))
  }, 10_000, `nodes ${names.join(', ')} to be live`)
}

/** `deploy` through `node` with fast health checks; resolves with the result whatever the exit code. */
function deployVia(node: Proxy, targets: string[], flags: string[] = []): Promise<CliResult> {
  return node.cli(['deploy', ...targets, ...FAST_HEALTH_FLAGS, ...flags])
}

/**
 * Stops Redis until every node has noticed (logged a `redis error`, so that it logs `redis
 * reconnected` later), then starts it again: with its data if it persists, empty if not.
 */
async function redisOutage(redis: RedisServer, nodes: Proxy[]): Promise<void> {
  const errorsBefore = nodes.map(redisErrors)
  await redis.stop()
  await waitUntil(() => nodes.every((node, i) => redisErrors(node) > errorsBefore[i]), RECONNECT_TIMEOUT_MS, 'every node to notice')
  await redis.restart()
}

const redisErrors = (node: Proxy): number => node.logs.filter((line) => line.msg === 'redis error').length

const appliedFromOtherNode = (line: LogLine): boolean => line.msg === 'applied change from another node'
const redisReconnected = (line: LogLine): boolean => line.msg === 'redis reconnected'
const wroteBackState = (line: LogLine): boolean => line.msg === 'redis was empty: wrote back the state this node serves'

/** The first time `port` answers `body`, polling with fresh connections until `stop()`. */
function firstServed(port: number, body: string): { stop(): Promise<number | undefined> } {
  let running = true
  let at: number | undefined
  const loop = (async () => {
    while (running && at === undefined) {
      const seen = await getBody(port).catch(() => undefined)
      if (seen === body) at = Date.now()
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      return at
    },
  }
}

/** The duration in `node NAME: switched and drained after 2.4s`, in ms. */
function reportedDrainMs(stdout: string, name: string): number {
  const match = new RegExp(`^node ${name}: switched and drained after (\\S+)$`, 'm').exec(stdout)
  if (!match) throw new Error(`no "node ${name}: switched and drained after" line in:\n${stdout}`)
  const [, text] = match
  const ms = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(text)
  if (!ms) throw new Error(`unexpected duration "${text}"`)
  return Number(ms[1]) * (ms[2] === 's' ? 1000 : 1)
}

describe('fleet: several nodes on one Redis', () => {
  jest.setTimeout(FLEET_TEST_TIMEOUT_MS)

  describe('changes reach every node', () => {
    it('serves a deploy made through n1 on n2 and n3 by the time it returns, naming the nodes it waited for', async () => {
      const redis = await startRedis()
      const backend = await startBackend()
      const [n1, n2, n3] = await startFleet(redis, 3)

      const result = await n1.deploy([backend.address], ['--host', 'app.test'])

      for (const node of [n1, n2, n3]) expect(await getBody(node.port, { host: 'app.test' })).toBe(backend.name)
      expect(result.stdout).toMatch(/^waiting for 2 other nodes to switch and drain: n2, n3$/m)
      expect(result.stdout).toMatch(/^node n2: switched and drained after \S+$/m)
      expect(result.stdout).toMatch(/^node n3: switched and drained after \S+$/m)
    })

    it('logs "applied change from another node" with the origin on the nodes that applied it', async () => {
      const redis = await startRedis()
      const backend = await startBackend()
      const [n1, n2] = await startFleet(redis, 2)

      await n1.deploy([backend.address], ['--host', 'app.test'])

      const applied = await n2.waitForLog(appliedFromOtherNode)
      expect(applied).toMatchObject({ service: 'app.test', origin: 'n1' })
      expect(applied.revision).toEqual(expect.any(Number))
      expect(n1.logs.filter(appliedFromOtherNode)).toEqual([])
    })

    it('switches n2 to the new target within 1 s of n1', async () => {
      const redis = await startRedis()
      const [a, b] = [await startBackend(), await startBackend()]
      const [n1, n2] = await startFleet(redis, 2)
      await n1.deploy([a.address])

      const onN1 = firstServed(n1.port, b.name)
      const onN2 = firstServed(n2.port, b.name)
      await n1.deploy([b.address])
      const [n1At, n2At] = [await onN1.stop(), await onN2.stop()]

      expect(n1At).toBeDefined()
      expect(n2At).toBeDefined()
      expect(Math.abs(n2At! - n1At!)).toBeLessThan(1_000)
    })

    it('stops routing on n1 when the service is removed through n2', async () => {
      const redis = await startRedis()
      const backend = await startBackend()
      const [n1, n2] = await startFleet(redis, 2)
      await n1.deploy([backend.address], ['--host', 'app.test'])
      expect(await getBody(n1.port, { host: 'app.test' })).toBe(backend.name)

      const removed = await n2.cli(['remove', 'app.test'])

      expect(removed.code).toBe(0)
      expect((await request(n1.port, { host: 'app.test' })).status).toBe(404)
      expect((await request(n2.port, { host: 'app.test' })).status).toBe(404)
      expect((await listFleet(n1)).services).toEqual([])
    })
  })

  describe('draining on other nodes', () => {
    it('waits for a request in flight on n2 before a deploy through n1 returns', async () => {
      const redis = await startRedis()
      const [a, b] = [await startBackend(), await startBackend()]
      const [n1, n2] = await startFleet(redis, 2)
      await n1.deploy([a.address])
      const slow = timed(request(n2.port, { path: `/slow?ms=${SLOW_REQUEST_MS}` }))
      await waitUntil(() => a.appRequests >= 1, undefined, 'the slow request to reach the old target through n2')

      const deploy = timed(n1.deploy([b.address], ['--drain-timeout', '20s']))
      const [slowResult, deployResult] = [await slow, await deploy]

      expect(slowResult.error).toBeUndefined()
      expect(slowResult.value).toMatchObject<Partial<Response>>({ status: 200, body: a.name })
      expect(deployResult.error).toBeUndefined()
      expect(deployResult.at).toBeGreaterThanOrEqual(slowResult.at - CLOCK_SLACK_MS)
      expect(deployResult.value!.durationMs).toBeGreaterThanOrEqual(2_000)
      expect(reportedDrainMs(deployResult.value!.stdout, 'n2')).toBeGreaterThanOrEqual(1_500)
      expect(await getBody(n2.port)).toBe(b.name)
    })

    it('drops no request on n2 while n1 deploys 3 times under continuous load', async () => {
      const redis = await startRedis()
      const [a, b] = [await startBackend(), await startBackend()]
      const [n1, n2] = await startFleet(redis, 2)
      await n1.deploy([a.address])
      const load = runLoad(n2.port, { concurrency: 8 })
      await waitUntil(() => load.snapshot().ok >= 100, 10_000, 'load on n2 to warm up')

      for (const next of [b, a, b]) {
        await n1.deploy([next.address])
        expect(await collectBodies(n2.port, 4)).toEqual(new Map([[next.name, 4]]))
      }
      const result = await load.stop()

      expectAllServedBy(result, [a, b])
    })
  })

  describe('health from where each node stands', () => {
    it('switches a node whose health checks fail anyway, and the deploy warns about it', async () => {
      const redis = await startRedis()
      const old = await startBackend()
      const [n1, n2] = await startFleet(redis, 2)
      await n1.deploy([old.address])
      // Healthy for the deploying node's first probe only: every later probe, n2's included, gets 503.
      let probes = 0
      const flaky = await startBackend((req, res, backend) => {
        if (req.url === '/up') {
          res.statusCode = ++probes === 1 ? 200 : 503
          res.end()
        } else {
          defaultHandler(req, res, backend)
        }
      })

      const result = await n1.deploy([flaky.address])

      expect(result.stdout).toContain(`warning: node n2: switched although ${flaky.address} failed its health checks from there: status 503`)
      expect(await getBody(n2.port)).toBe(flaky.name)
    })
  })

  describe('concurrent deploys', () => {
    it('serialises deploys of one service through n1 and n2; both succeed and both nodes serve the last one', async () => {
      const redis = await startRedis()
      const [a, b, c] = [await startBackend(), await startBackend(), await startBackend()]
      const [n1, n2] = await startFleet(redis, 2)
      await n1.deploy([a.address])
      // A request held on n2 keeps whichever deploy goes first busy draining for ~2.5 s, so the
      // two deploys surely overlap.
      const slow = request(n2.port, { path: `/slow?ms=${SLOW_REQUEST_MS}` }).catch(() => undefined)
      await waitUntil(() => a.appRequests >= 1, undefined, 'the slow request to reach the old target through n2')

      const [viaN1, viaN2] = await Promise.all([
        deployVia(n1, [b.address], ['--drain-timeout', '20s']),
        deployVia(n2, [c.address], ['--drain-timeout', '20s']),
      ])
      await slow

      expect(viaN1).toMatchObject({ code: 0 })
      expect(viaN2).toMatchObject({ code: 0 })
      const waited = [
        { result: viaN1, other: 'n2', target: b },
        { result: viaN2, other: 'n1', target: c },
      ].filter(({ result }) => /^waiting for node n\d to finish its change of /m.test(result.stdout))
      expect(waited).toHaveLength(1)
      const [second] = waited
      expect(second.result.stdout).toMatch(new RegExp(`^waiting for node ${second.other} to finish its change of default$`, 'm'))
      expect(await getBody(n1.port)).toBe(second.target.name)
      expect(await getBody(n2.port)).toBe(second.target.name)
    })
  })

  describe('one host, two services, two nodes at once', () => {
    it('lets one deploy claim the host; the other is refused with the reason and changes nothing', async () => {
      const redis = await startRedis()
      // Health answers take 500 ms, so both deploys pass their first host check before either saves.
      const slowHealth = (req: IncomingMessage, res: ServerResponse, backend: Backend) => {
        if (req.url === '/up') setTimeout(() => res.end('ok'), 500)
        else defaultHandler(req, res, backend)
      }
      const [a, b] = [await startBackend(slowHealth), await startBackend(slowHealth)]
      const [n1, n2] = await startFleet(redis, 2)

      const [viaN1, viaN2] = await Promise.all([
        deployVia(n1, [a.address], ['--name', 'first', '--host', 'shared.test']),
        deployVia(n2, [b.address], ['--name', 'second', '--host', 'shared.test']),
      ])

      const outcomes = [{ result: viaN1, backend: a, other: 'second' }, { result: viaN2, backend: b, other: 'first' }]
      const winners = outcomes.filter(({ result }) => result.code === 0)
      expect(winners).toHaveLength(1)
      const [loser] = outcomes.filter(({ result }) => result.code !== 0)
      expect(loser.result.stderr).toMatch(new RegExp(`^Error: host shared\\.test is already used by service ${loser.other}$`, 'm'))
      for (const node of [n1, n2]) {
        await waitUntil(async () => (await getBody(node.port, { host: 'shared.test' })) === winners[0].backend.name, CATCH_UP_TIMEOUT_MS, 'the winner on every node')
        expect((await listFleet(node)).services.map((service) => service.name)).toEqual([loser.other])
      }
    })
  })

  describe('nodes that stop', () => {
    it('does not wait for a node stopped with SIGTERM', async () => {
      const redis = await startRedis()
      const backend = await startBackend()
      const [n1, n2, n3] = await startFleet(redis, 3)
      expect(await n3.stop('SIGTERM')).toBe(0)

      const result = await n1.deploy([backend.address])

      expect(result.stdout).toMatch(/^waiting for 1 other node to switch and drain: n2$/m)
      expect(result.stdout).toMatch(/^node n2: switched and drained after \S+$/m)
      expect(result.stdout).not.toMatch(/\bn3\b/)
      expect(await getBody(n2.port)).toBe(backend.name)
    })

    it('stops waiting for a node that dies while draining, and says so', async () => {
      const redis = await startRedis()
      const [a, b] = [await startBackend(), await startBackend()]
      const [n1, n2, n3] = await startFleet(redis, 3)
      await n1.deploy([a.address])
      // Holds n3 draining far longer than the deploy may take.
      const slow = request(n3.port, { path: '/slow?ms=30000' }).catch(() => undefined)
      await waitUntil(() => a.appRequests >= 1, undefined, 'the slow request to reach the old target through n3')

      const deploy = deployVia(n1, [b.address], ['--drain-timeout', '60s'])
      await waitUntil(async () => (await getBody(n3.port)) === b.name, 10_000, 'n3 to switch (and start draining)')
      n3.proc.kill('SIGKILL')
      const result = await deploy
      await slow

      expect(result).toMatchObject({ code: 0 })
      expect(result.stdout).toMatch(/^waiting for 2 other nodes to switch and drain: n2, n3$/m)
      expect(result.stdout).toMatch(/^node n2: switched and drained after \S+$/m)
      expect(result.stdout).toMatch(/^node n3: stopped heartbeating, not waiting for it$/m)
      // Heartbeats expire within 5 s: nowhere near the 30 s of the request held on n3.
      expect(result.durationMs).toBeLessThan(15_000)
      expect(await getBody(n2.port)).toBe(b.name)
    })
  })

  describe('list and status', () => {
    it('lists a stopped node as not live and the others as live in list --json', async () => {
      const redis = await startRedis()
      const [n1, , n3] = await startFleet(redis, 3)
      expect(await n3.stop('SIGTERM')).toBe(0)

      const { nodes } = await listFleet(n1)

      expect(nodes.map(({ name, self, live }) => ({ name, self, live }))).toEqual([
        { name: 'n1', self: true, live: true },
        { name: 'n2', self: false, live: true },
        { name: 'n3', self: false, live: false },
      ])
      for (const entry of nodes) {
        expect(Number.isNaN(Date.parse(entry.lastHeartbeatAt))).toBe(false)
        expect(entry.revision).toEqual(expect.any(Number))
      }
    })

    it('prints a NODE table after the services in text list', async () => {
      const redis = await startRedis()
      const backend = await startBackend()
      const [n1, n2, n3] = await startFleet(redis, 3)
      await n1.deploy([backend.address])
      expect(await n3.stop('SIGTERM')).toBe(0)

      const listed = await n2.cli(['list'])

      expect(listed.code).toBe(0)
      const [services, nodes] = listed.stdout.split('\n\n')
      expect(services).toMatch(/^SERVICE\s+HOSTS/)
      expect(services).toContain(backend.address)
      expect(nodes).toMatch(/^NODE\s+STATE\s+LAST HEARTBEAT\s+REVISION\n/)
      expect(nodes).toMatch(/^n1\s+live(?! \(this node\))\s/m)
      expect(nodes).toMatch(/^n2\s+live \(this node\)\s+\S/m)
      expect(nodes).toMatch(/^n3\s+gone\s/m)
    })

    it('names the node in status --json', async () => {
      const redis = await startRedis()
      const [n1] = await startFleet(redis, 1)

      const status = await n1.cli(['status', '--json'])

      expect(status.code).toBe(0)
      expect(JSON.parse(status.stdout)).toMatchObject({ node: 'n1' })
    })
  })

  describe('lost notifications', () => {
    it('applies a change whose notification was lost, from its heartbeat check (within seconds)', async () => {
      const redis = await startRedis()
      const [a, b] = [await startBackend(), await startBackend()]
      const [n1, n2] = await startFleet(redis, 2)
      await n1.deploy([a.address])

      // The change as a node writes it (see shared-state.ts), but with no PUBLISH.
      const client = createRedisClient(redis.url)
      onCleanup(async () => client.disconnect())
      await client.connect()
      const spec = {
        name: 'default', hosts: [], targets: [b.address], healthCheck: { path: '/up', intervalMs: 100, timeoutMs: 1000 },
        targetTimeoutMs: 30_000, drainTimeoutMs: 30_000, tls: false, tlsRedirect: true,
      }
      await client.eval(
        `local revision = redis.call('INCR', KEYS[1])
         redis.call('HSET', KEYS[2], 'default', '{"revision":' .. revision .. ',"origin":"elsewhere","spec":' .. ARGV[1] .. '}')`,
        2, 'mproxy:revision', 'mproxy:services', JSON.stringify(spec))
      const writtenAt = Date.now()

      for (const node of [n1, n2]) {
        await waitUntil(async () => (await getBody(node.port)) === b.name, CATCH_UP_TIMEOUT_MS, 'the change on every node')
      }
      // Two heartbeats (1 s each) and a health probe, with room for a loaded machine.
      expect(Date.now() - writtenAt).toBeLessThan(4_000)
    })
  })

  describe('Redis going away', () => {
    it('keeps serving on every node while Redis is down, and refuses deploys with the reason', async () => {
      const redis = await startRedis()
      const [a, b] = [await startBackend(), await startBackend()]
      const [n1, n2] = await startFleet(redis, 2)
      await n1.deploy([a.address])

      await redis.stop()
      const failed = await deployVia(n1, [b.address])

      expect(failed.code).toBe(1)
      expect(failed.stderr).toMatch(/^Error: cannot reach redis/)
      expect(await collectBodies(n1.port, 4)).toEqual(new Map([[a.name, 4]]))
      expect(await collectBodies(n2.port, 4)).toEqual(new Map([[a.name, 4]]))
    })

    it('reconciles when Redis comes back: a deploy through n2 reaches n1', async () => {
      const redis = await startRedis({ persist: true })
      const [a, b] = [await startBackend(), await startBackend()]
      const [n1, n2] = await startFleet(redis, 2)
      await n1.deploy([a.address])

      await redisOutage(redis, [n1, n2])
      await Promise.all([n1, n2].map((node) => node.waitForLog(redisReconnected, RECONNECT_TIMEOUT_MS)))
      await n2.deploy([b.address])

      await waitUntil(async () => (await getBody(n1.port)) === b.name, CATCH_UP_TIMEOUT_MS, 'n1 to serve the deploy made through n2')
      expect(await getBody(n2.port)).toBe(b.name)
    })

    it('writes back the state it serves when Redis comes back empty, so a new node restores it', async () => {
      const redis = await startRedis()
      const backend = await startBackend()
      const [n1, n2] = await startFleet(redis, 2)
      await n1.deploy([backend.address], ['--host', 'app.test'])

      // Restarted at once, as a supervisor would: the nodes may never see a failed reconnect.
      await redis.restart()
      await Promise.any([n1, n2].map((node) => node.waitForLog(wroteBackState, RECONNECT_TIMEOUT_MS)))
      const n3 = await startNode(redis, 'n3', { stateDir: makeStateDir() })

      expect(await getBody(n3.port, { host: 'app.test' })).toBe(backend.name)
    })

    it('carries a deploy to the node that wrote back the state after Redis came back empty', async () => {
      const redis = await startRedis()
      const [a, b] = [await startBackend(), await startBackend()]
      const [n1, n2] = await startFleet(redis, 2)
      await n1.deploy([a.address])

      await redisOutage(redis, [n1, n2])
      const writer = await Promise.any([n1, n2].map((node) => node.waitForLog(wroteBackState, RECONNECT_TIMEOUT_MS).then(() => node)))
      const other = writer === n1 ? n2 : n1
      await Promise.all([n1, n2].map((node) => node.waitForLog(redisReconnected, RECONNECT_TIMEOUT_MS)))
      await other.deploy([b.address])

      await waitUntil(async () => (await getBody(writer.port)) === b.name, CATCH_UP_TIMEOUT_MS, 'the node that wrote back to serve the deploy')
      expect(await getBody(other.port)).toBe(b.name)
    })
  })
})
