/**
 * ioredis clients as mproxy needs them: they fail fast instead of queueing while Redis is away
 * (a deploy must not hang), retry the connection forever with a bounded delay, and always have
 * an error listener (an unhandled 'error' event would end the primary).
 */
import { Redis, type RedisOptions } from 'ioredis'
import { log } from '../../lib/logger'

/** A command that gets no answer in this time fails. */
const COMMAND_TIMEOUT_MS = 2_000
const RECONNECT_MAX_DELAY_MS = 2_000

/** `redis://`, `rediss://` or `unix:///path`, as given to `--redis-url`. */
export function createRedisClient(url: string, options: RedisOptions = {}): Redis {
  const settings: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: COMMAND_TIMEOUT_MS,
    // Dead peers behind NAT or after a sleep are noticed, not waited on forever.
    keepAlive: 10_000,
    retryStrategy: (attempt: number) => Math.min(attempt * 200, RECONNECT_MAX_DELAY_MS),
    ...options,
  }
  const redis = url.startsWith('unix://') ? new Redis({ ...settings, path: url.slice('unix://'.length) }) : new Redis(url, settings)
  const label = redactPassword(url)
  let lastError = ''
  redis.on('error', (err: Error) => {
    // ioredis repeats the same error on every reconnect attempt: log changes only.
    if (err.message !== lastError) log('warn', 'redis error', { redis: label, connection: settings.connectionName, error: err.message })
    lastError = err.message
  })
  redis.on('ready', () => {
    if (lastError) log('info', 'redis reconnected', { redis: label, connection: settings.connectionName })
    lastError = ''
  })
  return redis
}

export function redactPassword(url: string): string {
  return url.replace(/\/\/([^@/]*):[^@/]*@/, '//$1:***@')
}
