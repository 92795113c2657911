import { X509Certificate } from 'node:crypto'
import tls from 'node:tls'
import { delayMs, startBackend, startPebble, startProxy, startRedis, waitUntil, type Pebble, type Proxy, type RedisServer } from './helpers'

const HOST = 'app.fleet.test'
/** Issuance against Pebble takes well under a second; this bounds it on a loaded machine. */
const ISSUANCE_TIMEOUT_MS = 20_000
/** How often a node looks for a certificate another node is ordering (FLEET_ORDER_RECHECK_MS in acme-manager.ts). */
const FLEET_RECHECK_MS = 5_000

function startAcmeNode(redis: RedisServer, pebble: Pebble, name: string, retryBase = '200ms'): Promise<Proxy> {
  return startProxy({
    workers: 1,
    args: ['--redis-url', redis.url, '--node-name', name, '--acme-directory', pebble.directoryUrl],
    env: { NODE_EXTRA_CA_CERTS: pebble.listenerCaFile, MPROXY_ACME_RETRY_BASE: retryBase },
  })
}

function presentedCertificate(port: number, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: HOST, ca }, () => {
      const raw = socket.getPeerX509Certificate()
      socket.destroy()
      if (raw) resolve(raw)
      else reject(new Error('no certificate'))
    })
    socket.on('error', reject)
  })
}

async function certificateState(node: Proxy): Promise<string | undefined> {
  return (await node.list()).services.flatMap((service) => service.certificates).find((c) => c.host === HOST)?.state
}

const ordered = (node: Proxy) => node.logs.filter((line) => line.msg === 'certificate order started').length

describe('automatic certificates in a fleet (Redis, Pebble)', () => {
  it('orders once for the whole fleet; the other node answers the challenge and serves the same certificate', async () => {
    const redis = await startRedis()
    const pebble = await startPebble()
    const backend = await startBackend()
    const n1 = await startAcmeNode(redis, pebble, 'n1')
    const n2 = await startAcmeNode(redis, pebble, 'n2')
    // The CA validates through n2, whichever node orders: both answer from the shared account key.
    pebble.forwardTo(n2.port)

    await n1.deploy([backend.address], ['--host', HOST, '--ssl'])
    for (const node of [n1, n2]) await waitUntil(async () => (await certificateState(node)) === 'valid', ISSUANCE_TIMEOUT_MS, 'the certificate')

    expect(ordered(n1) + ordered(n2)).toBe(1)
    const loadedFromFleet = [n1, n2].filter((node) => node.logs.some((line) => line.msg === 'certificate loaded from the fleet'))
    expect(loadedFromFleet).toHaveLength(1)
    const root = await pebble.root()
    const [first, second] = await Promise.all([presentedCertificate(n1.httpsPort, root), presentedCertificate(n2.httpsPort, root)])
    expect(first.serialNumber).toBe(second.serialNumber)
    expect(first.subjectAltName).toBe(`DNS:${HOST}`)
  })

  it('shares a failed order: the other node shows it failing and waits out the same backoff', async () => {
    const redis = await startRedis()
    const pebble = await startPebble()
    const backend = await startBackend()
    // A backoff long enough that no second attempt falls inside the test.
    const [n1, n2] = [await startAcmeNode(redis, pebble, 'n1', '20s'), await startAcmeNode(redis, pebble, 'n2', '20s')]
    pebble.forwardTo(1) // nothing answers the challenge

    await n1.deploy([backend.address], ['--host', HOST, '--ssl'])
    const failedOn = () => [n1, n2].filter((node) => node.logs.some((line) => line.msg === 'certificate order failed'))
    await waitUntil(() => failedOn().length > 0, ISSUANCE_TIMEOUT_MS, 'the order to fail')
    const other = failedOn()[0] === n1 ? n2 : n1

    await other.waitForLog((line) => line.msg === 'certificate order failed on another node', 10_000)
    expect(await certificateState(other)).toBe('failing')
    // Nothing may happen now for 20 s: watch past the 5 s at which a node looks again while
    // another one orders, the moment a node ignoring the shared backoff would order.
    await delayMs(FLEET_RECHECK_MS + 1_000)
    expect(ordered(n1) + ordered(n2)).toBe(1)
  })

  it('shares the ACME account: a node started later on an empty disk serves the certificate without ordering', async () => {
    const redis = await startRedis()
    const pebble = await startPebble()
    const backend = await startBackend()
    const n1 = await startAcmeNode(redis, pebble, 'n1')
    pebble.forwardTo(n1.port)
    await n1.deploy([backend.address], ['--host', HOST, '--ssl'])
    await waitUntil(async () => (await certificateState(n1)) === 'valid', ISSUANCE_TIMEOUT_MS, 'the certificate')

    const n3 = await startAcmeNode(redis, pebble, 'n3')
    expect(await certificateState(n3)).toBe('valid')
    const root = await pebble.root()
    expect((await presentedCertificate(n3.httpsPort, root)).serialNumber).toBe((await presentedCertificate(n1.httpsPort, root)).serialNumber)
    expect(ordered(n3)).toBe(0)
    expect(n3.logs.some((line) => line.msg === 'acme account key created')).toBe(false)
  })
})
