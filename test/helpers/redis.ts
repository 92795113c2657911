/** Test helpers: Redis (Debian package) */
import * as path from 'node:path'
import { makeStateDir } from './wait'
import { startLoggedProcess, stopChild } from './pebble'

export interface RedisServer {
  /** `unix:///…/redis.sock`: a socket in a temp dir needs no port at all. */
  url: string
  stop(): Promise<void>
  /**
   * Starts it again on the same socket. Its data is gone (it keeps nothing on disk) unless it
   * was started with `persist: true`.
   */
  restart(): Promise<void>
}

export interface RedisOptions {
  /** `--appendonly yes`: every write goes to an append-only file in its temp dir, so the data survives `restart()`. Default false. */
  persist?: boolean
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const dir = makeStateDir()
  const socket = path.join(dir, 'redis.sock')
  const start = () => startLoggedProcess('redis-server', [
    '--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', opts.persist ? 'yes' : 'no', '--dir', dir,
  ], { ready: /ready to accept connections/i })
  let child = await start()
  return {
    url: `unix://${socket}`,
    stop: () => stopChild(child),
    restart: async () => {
      await stopChild(child)
      child = await start()
    },
  }
}
