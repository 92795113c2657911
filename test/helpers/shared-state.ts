/**
 * The shared state in a real redis-server, in-process. Not in the helpers index: it loads the
 * Redis client, which the other tests do not need.
 */
import type { ServiceSpec } from '../../src/options'
import { createRedisClient } from '../../src/primary/fleet/redis-client'
import { SharedState } from '../../src/primary/state/shared-state'
import { normalizeServiceSpec } from '../../src/service-spec'
import { onCleanup } from './cleanup'
import { startRedis } from './redis'

/** A service spec on 127.0.0.1:3000, for records that are never routed. */
export function recordSpec(name: string, hosts: string[]): ServiceSpec {
  return normalizeServiceSpec({ name, hosts, targets: ['127.0.0.1:3000'], healthCheck: {} })
}

/** A fresh redis-server with a seeded shared state under `test:`, and a client connected to it. */
export async function startSharedState(): Promise<{ shared: SharedState; redis: ReturnType<typeof createRedisClient> }> {
  const server = await startRedis()
  const redis = createRedisClient(server.url)
  onCleanup(async () => redis.disconnect())
  await redis.connect()
  const shared = new SharedState(redis, 'test:', server.url)
  await shared.seed([], 'n1')
  await shared.read()
  return { shared, redis }
}
