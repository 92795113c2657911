/**
 * What a proxy with `--redis-url` is made of beyond a lone proxy: the state store in Redis, its
 * place in the fleet, and the certificates the fleet shares. Loaded only when Redis is used.
 */
import type { CertificateFiles, CertificateStore } from '../tls/certificate-files'
import type { Fleet } from './fleet'
import type { RedisOptions } from '../../server-options'
import type { StateStore } from '../state/state-store'
import { parseDuration } from '../../lib/duration'

/** How often tombstones of removed services that every live node has read are deleted. */
const DEFAULT_PRUNE_INTERVAL_MS = 60_000

/** What a proxy with `--redis-url` shares with its fleet. */
export interface SharedParts {
  store: StateStore
  fleet: Fleet
  certificates(files: CertificateFiles): CertificateStore
  /** Closes both Redis connections: this is their one owner; the parts above only use them. */
  close(): void
}

/** The Redis client is loaded only when Redis is used. */
export async function connectRedis(options: RedisOptions, file: StateStore, version: string): Promise<SharedParts> {
  const [{ createRedisClient, redactPassword }, { SharedState }, { RedisStateStore }, { Fleet }, { FleetNodes }, { SharedCertificates }] = await Promise.all([
    import('./redis-client'), import('../state/shared-state'), import('../state/redis-state-store'), import('./fleet'), import('./fleet-nodes'), import('./shared-certificates'),
  ])
  const label = `${redactPassword(options.url)} prefix ${options.prefix}`
  const redis = createRedisClient(options.url, { connectionName: `mproxy:${options.node}` })
  // Subscribing takes a connection of its own.
  const subscriber = createRedisClient(options.url, { connectionName: `mproxy:${options.node}:changes` })
  const shared = new SharedState(redis, options.prefix, label)
  const certificatesChannel = `${options.prefix}certificates`
  return {
    store: new RedisStateStore({ redis, shared, file, node: options.node, label, prefix: options.prefix }),
    fleet: new Fleet({
      redis, subscriber, shared, nodes: new FleetNodes(redis, options.prefix, options.node, version), prefix: options.prefix,
      channels: [shared.channel, certificatesChannel],
      pruneIntervalMs: process.env.MPROXY_FLEET_PRUNE_INTERVAL ? parseDuration(process.env.MPROXY_FLEET_PRUNE_INTERVAL, 'MPROXY_FLEET_PRUNE_INTERVAL') : DEFAULT_PRUNE_INTERVAL_MS,
    }),
    certificates: (files) => new SharedCertificates({ redis, subscriber, files, node: options.node, prefix: options.prefix, channel: certificatesChannel }),
    close: () => {
      subscriber.disconnect()
      redis.disconnect()
    },
  }
}
