/**
 * The primary process: loads state, starts the workers, serves the control socket, and owns
 * the signals (SIGTERM/SIGINT: drain and exit 0; SIGHUP: reload the workers; SIGUSR2: replace
 * the whole process, see upgrade.ts). Started beside a running proxy, it takes over from it
 * (see takeover.ts).
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { ShuttingDownError, oneLine } from '../errors'
import { SOCKET_NAME, type StatusResponse } from '../control/protocol'
import type { ServerOptions } from '../server-options'
import { ControlServer } from '../control/server'
import { flushLogs, log } from '../lib/logger'
import { notifySystemd } from '../lib/systemd-notify'
import { AcmeManager } from './tls/acme-manager'
import { CertificateFiles } from './tls/certificate-files'
import { MutationGate } from './handover/mutation-gate'
import { Registry } from './deploys/registry'
import { rolloutDeploy, rolloutSet, rolloutStop } from './deploys/rollouts'
import { EventLoopDelay } from './event-loop-delay'
import { ServiceCertificates } from './tls/service-certificates'
import { connectRedis } from './fleet/shared-parts'
import { FileStateStore, STATE_VERSION, type StateStore } from './state/state-store'
import { Supervisor } from './workers/supervisor'
import { MetricsServer } from './metrics/metrics-server'
import type { ProxyMetrics } from './metrics/proxy-metrics'
import { Handover, Takeover } from './handover/takeover'
import { Upgrader, disconnectFromParent, inheritedSockets } from './handover/upgrade'
import { linkSocket, unlinkSocket } from './handover/socket-link'

export async function startPrimary(options: ServerOptions): Promise<void> {
  const startedAt = Date.now()
  // From the first step on: a slow start-up holds the loop as much as a slow deploy does.
  const eventLoopDelay = new EventLoopDelay()
  await fs.mkdir(options.stateDir, { recursive: true, mode: 0o700 })
  const socketPath = options.socketPath
  // Where commands given the state dir look: the socket, or a link to it.
  const stateDirSocket = path.join(options.stateDir, SOCKET_NAME)
  // Started by `mproxy upgrade`: the listening sockets of the primary that started this one.
  const inherited = await inheritedSockets()
  // Beside a running proxy, take over from it. Should this process fail before the commit, its
  // exit closes the takeover's connection, and the running proxy carries on.
  const takeover = await Takeover.begin([socketPath, stateDirSocket], { pid: process.pid, version: options.version })

  const file = new FileStateStore(options.stateDir)
  const shared = options.redis ? await connectRedis(options.redis, file, options.version) : undefined
  const store: StateStore = shared?.store ?? file
  const certificateFiles = new CertificateFiles(options.stateDir)
  let snapshot = await store.load()
  if (!snapshot && !shared) {
    // A first start where kamal-proxy ran: carry its services (and certificates) over.
    // Loaded only then: every later start has a state of its own.
    const { importKamalProxy } = await import('../kamal/migration')
    snapshot = await importKamalProxy(options.stateDir, options.acme.directoryUrl, certificateFiles)
    if (snapshot) await store.save(snapshot)
  }
  await shared?.fleet.nodes.join()

  let shuttingDown = false
  const supervisor = new Supervisor({
    workers: options.workers,
    // Taking over: the running proxy's ports where this one's are 0, bound alongside its sockets.
    ...(takeover?.ports(options) ?? { httpPort: options.httpPort, httpsPort: options.httpsPort }),
    sockets: inherited,
    workerConfig: {
      trustedProxies: options.trustedProxies,
      accessLog: options.accessLog,
      responseIdleTimeoutMs: options.responseIdleTimeoutMs,
      shutdownTimeoutMs: options.shutdownTimeoutMs,
      metrics: options.metricsPort !== undefined,
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
  const acme = new AcmeManager(options.acme, shared?.certificates(certificateFiles) ?? certificateFiles, () => registry.certificatesChanged())
  await acme.load()
  // With --metrics-port only: prom-client is loaded then, and workers count only then.
  const metrics: ProxyMetrics | undefined = options.metricsPort === undefined ? undefined : new (await import('./metrics/proxy-metrics')).ProxyMetrics({
    workerMetrics: (timeoutMs) => supervisor.metrics(timeoutMs),
    services: () => registry.list().services,
    ...(shared && { liveNodes: async () => (await shared.fleet.nodes.live()).size }),
  })
  const registry: Registry = new Registry(store, supervisor, new ServiceCertificates(acme, () => supervisor.httpsError), shared?.fleet, metrics)
  await registry.restore(snapshot)
  const metricsServer = metrics && new MetricsServer(metrics)
  // Before the workers start: a port that cannot be opened stops the start. A primary taking
  // over shares the port with the one it replaces until that one stops.
  await metricsServer?.listen(options.metricsPort ?? 0, takeover !== undefined || inherited !== undefined)
  await supervisor.start(registry.routeTable())
  acme.activate()
  await shared?.fleet.start(registry)

  // Every change goes through the gate, which a takeover closes while it runs.
  const gate = new MutationGate()
  const change = <T>(work: () => Promise<T>): Promise<T> => gate.run(() => {
    if (shuttingDown) throw new ShuttingDownError('mproxy is shutting down')
    return work()
  })
  const handover = new Handover({
    gate,
    saveState: async () => { await store.save({ version: STATE_VERSION, services: registry.services() }) },
    describe: () => ({ pid: process.pid, version: options.version, httpPort: supervisor.httpPort, httpsPort: supervisor.httpsPort }),
    get stopping() { return shuttingDown },
  })
  const upgrader = new Upgrader({ handover, gate, sockets: () => supervisor.listenSockets, get stopping() { return shuttingDown } })
  const control = new ControlServer(socketPath, {
    deploy: (request, progress) => change(() => {
      logIgnoredOptions(request.name, request.ignoredOptions)
      return registry.deploy(request, progress)
    }),
    remove: (request, progress) => change(() => registry.remove(request, progress)),
    rolloutDeploy: (request, progress) => change(() => {
      logIgnoredOptions(request.name, request.ignoredOptions)
      return rolloutDeploy(registry, request, progress)
    }),
    rolloutSet: (request, progress) => change(() => rolloutSet(registry, request, progress)),
    rolloutStop: (request, progress) => change(() => rolloutStop(registry, request, progress)),
    pause: (request, progress) => change(() => registry.changeState('pause', request, progress)),
    stop: (request, progress) => change(() => registry.changeState('stop', request, progress)),
    resume: (request, progress) => change(() => registry.changeState('resume', request, progress)),
    reload: (progress) => change(async () => {
      progress(`replacing ${supervisor.workerPids.length} workers one at a time`)
      await supervisor.reload(options.shutdownTimeoutMs)
      return `reloaded ${supervisor.workerPids.length} workers`
    }),
    upgrade: (progress) => upgrader.run(progress),
    prepare: (request, prepared, dropped) => handover.prepare(request, prepared, dropped),
    commit: (request) => handover.commit(request),
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
      acmeDirectory: options.acme.directoryUrl,
      metricsPort: metricsServer?.port,
      eventLoopDelay: eventLoopDelay.status(),
    }),
  })
  await control.listen()
  if (takeover) {
    await takeover.complete(control)
  } else {
    await control.publish()
    void notifySystemd('--ready')
  }
  await linkSocket(stateDirSocket, socketPath)
  if (inherited) disconnectFromParent()
  void handover.committed.then(() => stop(0))

  async function stop(exitCode: number): Promise<void> {
    if (shuttingDown) return
    shuttingDown = true
    const handedOver = handover.state === 'committed'
    log('info', 'shutting down', { timeoutMs: options.shutdownTimeoutMs, handedOver })
    // Scrapes go to the new primary, if there is one, from now on.
    await metricsServer?.close()
    if (handedOver) {
      // The socket path is the new primary's once it lets go of the takeover; closing ours leaves the path alone.
      await handover.released
      await control.close().catch(() => {})
    }
    // Leave the fleet first: a stopping node applies no more changes, and nobody waits for it.
    await shared?.fleet.stop()
    registry.stopHealthChecks()
    acme.stop()
    await supervisor.shutdown(options.shutdownTimeoutMs)
    if (!handedOver) {
      await control.close().catch(() => {})
      await fs.rm(socketPath, { force: true })
      await unlinkSocket(stateDirSocket, socketPath)
    }
    store.close?.()
    shared?.close()
    log('info', 'stopped', { exitCode })
    flushLogs()
    process.exit(exitCode)
  }

  process.on('SIGTERM', () => void stop(0))
  process.on('SIGINT', () => void stop(0))
  process.on('SIGHUP', () => {
    if (shuttingDown) return
    log('info', 'reload requested (SIGHUP)')
    change(() => supervisor.reload(options.shutdownTimeoutMs)).catch((err) => log('error', 'reload failed', { error: oneLine(err) }))
  })
  process.on('SIGUSR2', () => {
    log('info', 'upgrade requested (SIGUSR2)')
    upgrader.run((message) => log('info', message)).then(
      (message) => log('info', message),
      (err) => log('error', 'upgrade failed', { error: oneLine(err) }),
    )
  })

  log('info', 'listening', {
    http: supervisor.httpPort,
    https: supervisor.httpsPort,
    httpsError: supervisor.httpsError,
    metrics: metricsServer?.port,
    workers: supervisor.workerPids.length,
    stateDir: options.stateDir,
    socket: socketPath,
    pid: process.pid,
    version: options.version,
  })
}

/** Options another CLI dialect accepted without effect (see src/kamal/gaps.ts): said once, in the log. */
function logIgnoredOptions(service: string | undefined, options: string[] | undefined): void {
  if (options && options.length > 0) log('info', 'options accepted but not applied', { service, options })
}
