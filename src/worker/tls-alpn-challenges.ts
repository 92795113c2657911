/**
 * ACME TLS-ALPN-01: a validator connects to port 443 offering only the `acme-tls/1` protocol and
 * expects a challenge certificate for the name it asks for. Such connections are told apart
 * by their ClientHello and handed to a small TLS server that answers with that certificate and
 * closes; every other connection goes on to the HTTPS server untouched.
 */
import type net from 'node:net'
import tls from 'node:tls'
import type { RouteCertificate } from '../ipc/messages'
import { CertificateSelector } from './certificates'
import { offeredAlpnProtocols } from './client-hello'

export const ACME_TLS_PROTOCOL = 'acme-tls/1'

export class TlsAlpnChallenges {
  readonly #certificates = new CertificateSelector()
  readonly #server: tls.Server

  constructor() {
    this.#server = tls.createServer({
      ALPNProtocols: [ACME_TLS_PROTOCOL],
      SNICallback: (servername, callback) => this.#certificates.select(servername, callback),
    })
    this.#server.on('secureConnection', (socket) => socket.end())
    this.#server.on('tlsClientError', (_err, socket) => socket.destroy())
  }

  install(challenges: readonly RouteCertificate[]): void {
    this.#certificates.install(challenges)
  }

  /**
   * Takes over the 'connection' handling of `httpsServer`: the first bytes of each connection
   * decide where it goes, then they are put back for whichever TLS server reads them.
   */
  intercept(httpsServer: tls.Server, handshakeTimeoutMs: number): void {
    const [handOver] = httpsServer.listeners('connection') as Array<(socket: net.Socket) => void>
    httpsServer.removeAllListeners('connection')
    httpsServer.on('connection', (socket: net.Socket) => {
      // A connection that never speaks is closed; after the first bytes, the TLS server's own
      // handshake timeout applies.
      socket.setTimeout(handshakeTimeoutMs, () => socket.destroy())
      socket.once('data', (chunk: Buffer) => {
        socket.setTimeout(0)
        socket.pause()
        socket.unshift(chunk)
        const protocols = offeredAlpnProtocols(chunk)
        if (protocols.length === 1 && protocols[0] === ACME_TLS_PROTOCOL) this.#server.emit('connection', socket)
        else handOver.call(httpsServer, socket)
      })
      socket.on('error', () => socket.destroy())
    })
  }
}
