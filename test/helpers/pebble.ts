/** Test helpers: ACME test CA (Pebble, Debian package) */
import { ChildProcess, execFile, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { PROXY_START_TIMEOUT_MS, PROXY_STOP_TIMEOUT_MS, SHORT_TIMEOUT_MS } from './timing'
import { killHard, onCleanup, track } from './cleanup'
import { makeStateDir, waitUntil } from './wait'
import { request } from './client'
import { makeTestCertificate } from './certificates'

export interface Pebble {
  directoryUrl: string
  /** File with the CA of Pebble's own HTTPS listener, for NODE_EXTRA_CA_CERTS. */
  listenerCaFile: string
  /** PEM of the root Pebble issues certificates under (new at every start). */
  root(): Promise<string>
  /** Where Pebble's validator connects for HTTP-01; point it at the proxy with `forwardTo`. */
  forwardTo(port: number): void
  /** The same for TLS-ALPN-01 (the proxy's HTTPS port). */
  forwardTlsTo(port: number): void
  stop(): Promise<void>
}

/** The TCP ports a process listens on (UDP with `udp`), read back from the kernel. */
export async function listeningPorts(pid: number, udp = false): Promise<number[]> {
  const { stdout } = await execFileText('ss', [udp ? '-Hlnup' : '-Hlntp'])
  return stdout.split('\n')
    .filter((line) => line.includes(`pid=${pid},`))
    .map((line) => Number(/:(\d+)\s/.exec(line)?.[1]))
    .filter((port) => port > 0)
}

export function execFileText(file: string, args: string[]): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, (err, stdout) => (err ? reject(err) : resolve({ stdout })))
  })
}

export function startLoggedProcess(command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; ready: RegExp }): Promise<ChildProcess> {
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] })
  track(child)
  onCleanup(() => stopChild(child))
  return new Promise((resolve, reject) => {
    let output = ''
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (opts.ready.test(output)) resolve(child)
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('exit', (code) => reject(new Error(`${command} exited (${code}) before it was ready:\n${output}`)))
    setTimeout(() => reject(new Error(`${command} not ready in time:\n${output}`)), PROXY_START_TIMEOUT_MS).unref()
  })
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => killHard(child), PROXY_STOP_TIMEOUT_MS)
  await exited
  clearTimeout(timer)
}

/** A TCP forwarder on a kernel-picked port whose destination port can be set later. */
export async function startForwarder(): Promise<{ port: number; target: number }> {
  const forwarder = { port: 0, target: 0 }
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    const upstream = net.connect(forwarder.target, '127.0.0.1')
    for (const end of [socket, upstream]) {
      sockets.add(end)
      end.once('close', () => sockets.delete(end))
    }
    socket.on('error', () => upstream.destroy())
    upstream.on('error', () => socket.destroy())
    socket.pipe(upstream).pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onCleanup(() => new Promise<void>((resolve) => {
    // close() waits for every connection: one the validator left half-open would hang the test.
    server.close(() => resolve())
    for (const socket of sockets) socket.destroy()
  }))
  forwarder.port = (server.address() as net.AddressInfo).port
  return forwarder
}

/**
 * Starts pebble-challtestsrv (DNS: every name is 127.0.0.1) and Pebble on loopback ports picked
 * by the kernel. Pebble's HTTP-01 validator dials a forwarder of this process, which the test
 * points at the proxy once that has a port.
 */
export async function startPebble(opts: { validitySeconds?: number } = {}): Promise<Pebble> {
  const dir = makeStateDir()
  const http01 = await startForwarder()
  const tlsAlpn01 = await startForwarder()

  const dns = await startLoggedProcess('pebble-challtestsrv', [
    '-dns01', '127.0.0.1:0', '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', '127.0.0.1:0',
    '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
  ], { ready: /Starting management server/ })
  const [dnsPort] = await waitUntil(async () => {
    const ports = await listeningPorts(dns.pid!, true)
    return ports.length > 0 ? ports : undefined
  }, SHORT_TIMEOUT_MS, 'the DNS port of pebble-challtestsrv')

  const listener = makeTestCertificate(['localhost', '127.0.0.1'])
  const listenerCaFile = path.join(dir, 'listener-ca.pem')
  fs.writeFileSync(listenerCaFile, listener.ca)
  fs.writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify({
    pebble: {
      listenAddress: '127.0.0.1:0', managementListenAddress: '127.0.0.1:0',
      certificate: listener.certFile, privateKey: listener.keyFile,
      httpPort: http01.port, tlsPort: tlsAlpn01.port,
      ...(opts.validitySeconds && { certificateValidityPeriod: opts.validitySeconds }),
    },
  }))
  const pebble = await startLoggedProcess('pebble', ['-config', 'pebble.json', '-dnsserver', `127.0.0.1:${dnsPort}`], {
    cwd: dir,
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
    ready: /ACME directory available/,
  })
  // Two listeners: the ACME API answers /dir, the management API /roots/0.
  const ports = await waitUntil(async () => {
    const found = await listeningPorts(pebble.pid!)
    return found.length >= 2 ? found : undefined
  }, SHORT_TIMEOUT_MS, 'the ports of pebble')
  const tlsGet = (port: number, urlPath: string) => request(port, { path: urlPath, tls: { ca: listener.ca, servername: 'localhost' } })
  const statuses = await Promise.all(ports.map((port) => tlsGet(port, '/dir').then((res) => res.status)))
  const acmePort = ports[statuses.indexOf(200)]
  const managementPort = ports.find((port) => port !== acmePort)!

  return {
    directoryUrl: `https://127.0.0.1:${acmePort}/dir`,
    listenerCaFile,
    root: async () => (await tlsGet(managementPort, '/roots/0')).body,
    forwardTo: (port) => { http01.target = port },
    forwardTlsTo: (port) => { tlsAlpn01.target = port },
    stop: () => stopChild(pebble),
  }
}
