/**
 * The primary process: loads state, starts the workers, serves the control socket, and owns
 * the signals (SIGTERM/SIGINT: drain and exit 0; SIGHUP: reload the workers).
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { AlreadyRunningError, ShuttingDownError, oneLine } from '../errors'
import { SOCKET_NAME, type StatusResponse } from '../control/protocol'
import { ControlServer } from '../control/server'
import { flushLogs, log } from '../lib/logger'
import { AcmeManager, type AcmeOptions } from './acme-manager'
import { CertificateFiles, type CertificateStore } from './certificate-files'
import { Registry } from './registry'
import { ServiceCertificates } from './service-certificates'
import type { Fleet } from './fleet'
import { FileStateStore, type StateStore } from './state-store'
import { Supervisor } from './supervisor'

export interface RedisOptions {
  /** `redis://`, `rediss://` or `unix:///path`. */
  url: string
  /** Namespace of every key. Default `mproxy:`. */
  prefix: string
  /** This proxy's name in the fleet. Default `<hostname>:<http port>`. */
  node: string
}

export interface ServerOptions {
  /** Port for plain HTTP; 0 picks a free one. Default 80. */
  httpPort: number
  /** Port for HTTPS; 0 picks a free one. Default 443. If it cannot listen, mproxy runs without TLS. */
  httpsPort: number
  /** Worker processes. Default: one per CPU. */
  workers: number
  stateDir: string
  /** Addresses or CIDRs whose X-Forwarded-* headers are trusted. Default: none. */
  trustedProxies: string[]
  /** How long SIGTERM waits for in-flight requests, in ms. */
  shutdownTimeoutMs: number
  debug: boolean
  /** One log line per request. Default true. */
  accessLog: boolean
  /** A response whose upstream sends nothing for this long is cut. */
  responseIdleTimeoutMs: number
  acme: AcmeOptions
  /** Keep the state in Redis, shared by a fleet of proxies. Default: none. */
  redis?: RedisOptions
  version: string
}

export async function startPrimary(options: ServerOptions): Promise<void> {
  const startedAt = Date.now()
  await fs.mkdir(options.stateDir, { recursive: true, mode: 0o700 })
  const socketPath = path.join(options.stateDir, SOCKET_NAME)
  await claimSocket(socketPath)

  const file = new FileStateStore(options.stateDir)
  const shared = options.redis ? await connectRedis(options.redis, file, options.version) : undefined
  const store: StateStore = shared?.store ?? file
  const snapshot = await store.load()
  await shared?.fleet.nodes.join()

  let shuttingDown = false
  const supervisor = new Supervisor({
    workers: options.workers,
    httpPort: options.httpPort,
    httpsPort: options.httpsPort,
    workerConfig: {
      trustedProxies: options.trustedProxies,
      accessLog: options.accessLog,
      responseIdleTimeoutMs: options.responseIdleTimeoutMs,
      shutdownTimeoutMs: options.shutdownTimeoutMs,
      // One set of TLS session ticket keys for all workers, so a session resumes on any of them.
      ticketKeys: randomBytes(48).toString('base64'),
    },
    debug: options.debug,
    onCrashLoop: (err) => {
      log('error', 'giving up', { error: err.message })
      process.stderr.write(`Error: ${err.message}\n`)
      void stop(1)
    },
  })
  const certificateFiles = new CertificateFiles(options.stateDir)
  const acme = new AcmeManager(options.acme, shared?.certificates(certificateFiles) ?? certificateFiles, () => registry.certificatesChanged())
  await acme.load()
  const registry: Registry = new Registry(store, supervisor, new ServiceCertificates(acme, () => supervisor.httpsError), shared?.fleet)
  registry.restore(snapshot)
  await supervisor.start(registry.routeTable())
  acme.activate()
  await shared?.fleet.start(registry)

  const refuseWhileStopping = () => {
    if (shuttingDown) throw new ShuttingDownError('mproxy is shutting down')
  }
  const control = new ControlServer(socketPath, {
    deploy: (request, progress) => (refuseWhileStopping(), registry.deploy(request, progress)),
    remove: (request, progress) => (refuseWhileStopping(), registry.remove(request, progress)),
    reload: async (progress) => {
      refuseWhileStopping()
      progress(`replacing ${supervisor.workerPids.length} workers one at a time`)
      await supervisor.reload(options.shutdownTimeoutMs)
      return `reloaded ${supervisor.workerPids.length} workers`
    },
    list: async () => {
      if (!shared) return registry.list()
      // The services are in memory; only the view of the fleet needs Redis.
      const nodes = await shared.fleet.list().catch((err: unknown) => oneLine(err))
      return { ...registry.list(), ...(typeof nodes === 'string' ? { nodesError: nodes } : { nodes }) }
    },
    status: (): StatusResponse => ({
      version: options.version,
      pid: process.pid,
      uptimeMs: Date.now() - startedAt,
      workers: supervisor.workerPids.length,
      workerPids: supervisor.workerPids,
      services: registry.serviceCount,
      routeTableVersion: registry.tableVersion,
      state: store.describe(),
      node: shared?.fleet.nodes.self,
      httpPort: supervisor.httpPort,
      httpsPort: supervisor.httpsPort,
      httpsError: supervisor.httpsError,
      acceptErrors: supervisor.acceptErrors,
    }),
  })
  await control.listen()

  async function stop(exitCode: number): Promise<void> {
    if (shuttingDown) return
    shuttingDown = true
    log('info', 'shutting down', { timeoutMs: options.shutdownTimeoutMs })
    // Leave the fleet first: a stopping node applies no more changes, and nobody waits for it.
    await shared?.fleet.stop()
    registry.stopHealthChecks()
    acme.stop()
    await supervisor.shutdown(options.shutdownTimeoutMs)
    await control.close().catch(() => {})
    store.close?.()
    await fs.rm(socketPath, { force: true })
    log('info', 'stopped', { exitCode })
    flushLogs()
    process.exit(exitCode)
  }

  process.on('SIGTERM', () => void stop(0))
  process.on('SIGINT', () => void stop(0))
  process.on('SIGHUP', () => {
    if (shuttingDown) return
    log('info', 'reload requested (SIGHUP)')
    supervisor.reload(options.shutdownTimeoutMs).catch((err) => log('error', 'reload failed', { error: oneLine(err) }))
  })

  log('info', 'listening', {
    http: supervisor.httpPort,
    https: supervisor.httpsPort,
    httpsError: supervisor.httpsError,
    workers: supervisor.workerPids.length,
    stateDir: options.stateDir,
    socket: socketPath,
    pid: process.pid,
    version: options.version,
  })
}

/** What a proxy with `--redis-url` shares with its fleet. */
interface SharedParts {
  store: StateStore
  fleet: Fleet
  certificates(files: CertificateFiles): CertificateStore
}

/** The Redis client is loaded only when Redis is used. */
async function connectRedis(options: RedisOptions, file: StateStore, version: string): Promise<SharedParts> {
  const [{ createRedisClient, redactPassword }, { SharedState }, { RedisStateStore }, { Fleet }, { FleetNodes }, { SharedCertificates }] = await Promise.all([
    import('./redis-client'), import('./shared-state'), import('./redis-state-store'), import('./fleet'), import('./fleet-nodes'), import('./shared-certificates'),
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
    }),
    certificates: (files) => new SharedCertificates({ redis, subscriber, files, node: options.node, prefix: options.prefix, channel: certificatesChannel }),
  }
}

/** Refuses to start beside a running proxy; removes the socket a crashed one left behind. */
async function claimSocket(socketPath: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath)
    probe.once('connect', () => { probe.destroy(); resolve(true) })
    probe.once('error', () => resolve(false))
  })
  if (alive) throw new AlreadyRunningError(`another mproxy is already running with the control socket ${socketPath}`)
  await fs.rm(socketPath, { force: true })
}
