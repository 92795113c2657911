import net from 'node:net'
import tls from 'node:tls'
import { offeredAlpnProtocols } from '../src/worker/client-hello'

/** The first bytes a real Node TLS client sends with these ALPN protocols. */
async function clientHello(ALPNProtocols?: string[]): Promise<Buffer> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const first = new Promise<Buffer>((resolve) => server.once('connection', (socket) => socket.once('data', (chunk: Buffer) => {
      resolve(chunk)
      socket.destroy()
    })))
    const client = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', servername: 'app.test', ALPNProtocols })
    client.on('error', () => {})
    return await first
  } finally {
    server.close()
  }
}

describe('offeredAlpnProtocols', () => {
  it.each([
    ['the ACME validator', ['acme-tls/1'], ['acme-tls/1']],
    ['a browser-like client', ['h2', 'http/1.1'], ['h2', 'http/1.1']],
    ['a client without ALPN', undefined, []],
  ])('reads what %s offers', async (_case, offered, expected) => {
    expect(offeredAlpnProtocols(await clientHello(offered))).toEqual(expected)
  })

  it.each([
    ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\n\r\n')],
    ['an empty chunk', Buffer.alloc(0)],
    ['a truncated hello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])],
  ])('finds nothing in %s', (_case, data) => {
    expect(offeredAlpnProtocols(data)).toEqual([])
  })
})
