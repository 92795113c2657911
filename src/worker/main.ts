/**
 * Worker process entry (forked by the primary's supervisor). Workers never decide: they serve
 * from the latest route table the primary sent, report in-flight counts, and stop when told.
 * They ignore SIGINT/SIGTERM: the primary owns signals and sends `shutdown`.
 */
import cluster from 'node:cluster'
import net, { BlockList } from 'node:net'
import type http from 'node:http'
import { flushLogs, log, setDebug } from '../lib/logger'
import { metricsAsJson, processMetricsRegistry } from '../lib/process-metrics'
import { oneLine } from '../errors'
import { WORKER_CONFIG_ENV, type WorkerConfig } from '../server-options'
import {
  assertNever, isListenHandle, isPrimaryMessage, sendable,
  type ListenHandle, type ListenProtocol, type MetricJson, type PrimaryMessage, type WorkerMessage,
} from '../ipc/messages'
import { AcceptErrorReporter } from './accept-errors'
import { InflightReporter } from './inflight'
import { describeListenError, listen as listenAs, type ListenOrder } from './listeners'
import { CertificateSelector } from './certificates'
import { createProxyServer } from './proxy-server'
import { RequestMetrics } from './request-metrics'
import { TLS_HANDSHAKE_TIMEOUT_MS, TlsProxyServer } from './tls-proxy-server'
import { TlsAlpnChallenges } from './tls-alpn-challenges'
import { WorkerRoutes } from './route-table'

/** How often requests are checked against their target timeout. */
const TIMEOUT_SWEEP_INTERVAL_MS = 100
/** After a shutdown starts, idle keep-alive connections are closed this often. */
const IDLE_CLOSE_GRACE_MS = 1_000

function send(message: WorkerMessage, socket?: ListenHandle): void {
  if (process.connected) process.send?.(message, socket && sendable(socket))
}

function parseTrustedProxies(entries: string[]): BlockList | undefined {
  if (entries.length === 0) return undefined
  const list = new BlockList()
  for (const entry of entries) {
    const [address, prefix] = entry.split('/')
    const type = address.includes(':') ? 'ipv6' : 'ipv4'
    if (prefix === undefined) list.addAddress(address, type)
    else list.addSubnet(address, Number(prefix), type)
  }
  return list
}

function main(): void {
  const config = JSON.parse(process.env[WORKER_CONFIG_ENV] ?? '{}') as WorkerConfig
  setDebug(process.env.MPROXY_DEBUG === '1')
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => {})

  const reporter: InflightReporter = new InflightReporter(() => routes.targets(), () => routes.held(),
    (inflight, held) => send({ mproxy: 1, type: 'inflight', inflight, ...(Object.keys(held).length > 0 && { held }) }))
  let listening = false
  let shuttingDown = false
  const accessLog = config.accessLog !== false
  // Without --metrics-port nothing is counted: routes get no metrics to count in.
  const metrics = config.metrics ? new RequestMetrics() : undefined
  const processMetrics = config.metrics ? processMetricsRegistry() : undefined
  const routes: WorkerRoutes = new WorkerRoutes({
    closingClientConnections: () => shuttingDown,
    onCountChange(target) {
      if (target.retired && target.inflight === 0) routes.collectRetired()
      reporter.changed(target)
    },
    reroute: (exchange) => routes.match(exchange.host, exchange.req.url!)?.service.pick(exchange.req),
  }, { responseIdleTimeoutMs: config.responseIdleTimeoutMs, accessLog }, metrics, () => reporter.heldChanged())
  const trustedProxies = parseTrustedProxies(config.trustedProxies)
  const certificates = new CertificateSelector()
  let httpsPort = 0
  const acceptErrors = new AcceptErrorReporter((code, error) => send({ mproxy: 1, type: 'accept-error', code, error }))
  acceptErrors.watch()
  const server = createProxyServer({ routes, trustedProxies, accessLog, encrypted: false, httpsPort: () => httpsPort })
  server.on('error', (err) => {
    if (!acceptErrors.serverError(err)) log('error', 'http listener error', { error: err.message })
  })
  const tlsProxy = new TlsProxyServer({ routes, trustedProxies, accessLog, encrypted: true, httpsPort: () => httpsPort }, {
    SNICallback: (servername, callback) => certificates.select(servername, callback),
    ticketKeys: Buffer.from(config.ticketKeys, 'base64'),
  })
  const tlsServer = tlsProxy.server
  tlsServer.on('error', (err) => {
    if (!acceptErrors.serverError(err)) log('error', 'https listener error', { error: err.message })
  })
  const tlsChallenges = new TlsAlpnChallenges()
  tlsChallenges.intercept(tlsServer, TLS_HANDSHAKE_TIMEOUT_MS)
  setInterval(() => {
    const now = performance.now()
    for (const target of routes.targets()) target.expireSlowRequests(now)
    routes.expireHeld(now)
  }, TIMEOUT_SWEEP_INTERVAL_MS).unref()

  /** What the primary ordered each listener to listen on (sent before the first table). */
  const orders = new Map<ListenProtocol, ListenOrder>()

  /** HTTP must listen; HTTPS may fail (port 443 without privileges): then TLS is off, not the proxy. */
  async function listen(): Promise<{ httpPort: number; httpsPort: number; httpsError?: string }> {
    // The primary always orders HTTP; were the order missing, listening would fail and say why.
    const httpOrder = orders.get('http') ?? { source: 'attached', port: 0 }
    let httpPort: number
    try {
      httpPort = await listenFor('http', server, httpOrder)
    } catch (err) {
      send({ mproxy: 1, type: 'listen-failed', error: `cannot listen on HTTP port ${httpOrder.port}: ${describeListenError(err as NodeJS.ErrnoException)}` })
      flushLogs()
      // Let the message reach the primary before the exit does.
      setTimeout(() => process.exit(1), 50)
      return new Promise(() => {})
    }
    // No order: HTTPS could not listen in the first worker, and TLS is off.
    const httpsOrder = orders.get('https')
    if (!httpsOrder) return { httpPort, httpsPort: 0 }
    try {
      return { httpPort, httpsPort: await listenFor('https', tlsServer, httpsOrder) }
    } catch (err) {
      return { httpPort, httpsPort: 0, httpsError: `port ${httpsOrder.port}: ${describeListenError(err as NodeJS.ErrnoException)}` }
    }
  }

  /** Listens as ordered; a new socket goes to the primary, which keeps it for the slot's next workers. */
  async function listenFor(protocol: ListenProtocol, listener: net.Server, order: ListenOrder): Promise<number> {
    const { port, newSocket } = await listenAs(listener, order)
    if (newSocket) send({ mproxy: 1, type: 'listening', protocol, port }, newSocket)
    return port
  }

  function onMessage(message: PrimaryMessage, socket: unknown): void {
    switch (message.type) {
      case 'listen':
        orders.set(message.protocol, { source: message.source, port: message.port, handle: isListenHandle(socket) ? socket : undefined })
        return
      case 'routes':
        routes.install(message.table)
        if (message.table.certificates) certificates.install(message.table.certificates)
        if (message.table.acmeTlsChallenges) tlsChallenges.install(message.table.acmeTlsChallenges)
        send({ mproxy: 1, type: 'routes-applied', ack: message.seq, version: message.table.version, inflight: reporter.snapshot(), held: reporter.held() })
        if (!listening && !shuttingDown) {
          listening = true
          void listen().then((ready) => {
            httpsPort = ready.httpsPort
            send({ mproxy: 1, type: 'ready', version: routes.version, ...ready })
          })
        }
        return
      case 'cut':
        routes.cut(message.targets, message.service)
        return
      case 'shutdown':
        if (!shuttingDown) {
          shuttingDown = true
          void shutdown(server, tlsProxy, routes, message.timeoutMs, sendFinalMetrics)
        }
        return
      case 'collect-metrics':
        void collectMetrics().then((collected) => send({ mproxy: 1, type: 'metrics', ack: message.seq, metrics: collected }))
        return
      default:
        assertNever(message)
    }
  }

  async function collectMetrics(): Promise<MetricJson[]> {
    const own = processMetrics ? await metricsAsJson(processMetrics).catch((err: unknown) => {
      log('warn', 'process metrics failed', { error: oneLine(err) })
      return []
    }) : []
    return [...own, ...(metrics?.toJSON() ?? [])]
  }

  /** The counters as they end: the primary adds them to those of the workers that stopped before. */
  async function sendFinalMetrics(): Promise<void> {
    if (!metrics) return
    // Responses cut just now count when their sockets' close callbacks have run (the loop's close phase).
    await new Promise((resolve) => setImmediate(() => setImmediate(resolve)))
    send({ mproxy: 1, type: 'final-metrics', metrics: metrics.toJSON(true) })
  }

  process.on('message', (message: unknown, socket: unknown) => {
    if (isPrimaryMessage(message)) onMessage(message, socket)
  })
  // The primary is gone (killed, crashed): nobody routes or supervises this worker any more.
  // Requests in flight still finish, within the shutdown timeout. node:cluster would exit the
  // worker at once on a disconnect it did not ask for; marking the disconnect as expected
  // leaves the exit to `shutdown`.
  if (cluster.worker) cluster.worker.exitedAfterDisconnect = true
  process.on('disconnect', () => {
    if (!shuttingDown) {
      shuttingDown = true
      log('warn', 'primary gone: finishing in-flight requests, then exiting', { timeoutMs: config.shutdownTimeoutMs })
      void shutdown(server, tlsProxy, routes, config.shutdownTimeoutMs, sendFinalMetrics)
    }
  })
}

/**
 * Stop accepting, let in-flight requests finish (bounded), then exit. Idle keep-alive
 * connections are not closed at once (as http.Server#close would): a client may be sending on
 * one right now. Answers carry `Connection: close` instead, and connections still idle after a
 * grace period are closed. HTTP/2 sessions get a GOAWAY at once: their open streams finish.
 */
async function shutdown(plain: http.Server, secure: TlsProxyServer, routes: WorkerRoutes, timeoutMs: number, beforeDrained: () => Promise<void>): Promise<void> {
  const listening: net.Server[] = [plain, secure.server].filter((server) => server.listening)
  const allClosed = Promise.all(listening.map((server) =>
    new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()))))
  // The listening sockets are closed now (their connections are not): the primary may close its copies.
  send({ mproxy: 1, type: 'stopped-accepting' })
  secure.stopAdmitting()
  const idleSweep = setInterval(() => {
    plain.closeIdleConnections()
    secure.closeIdleConnections()
  }, IDLE_CLOSE_GRACE_MS)
  const deadline = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref())
  await Promise.race([allClosed, deadline])
  clearInterval(idleSweep)
  routes.cutHeld()
  for (const target of routes.targets()) target.destroy()
  plain.closeAllConnections()
  secure.closeAllConnections()
  await beforeDrained()
  send({ mproxy: 1, type: 'drained' })
  flushLogs()
  setTimeout(() => process.exit(0), 10).unref()
  if (process.connected) process.disconnect()
}

main()
