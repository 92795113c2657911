/**
 * The endpoint Prometheus scrapes: `GET /metrics` on every interface, like the proxy's own
 * listeners; any other path is 404. The socket is bound with SO_REUSEPORT so that a primary
 * taking over (takeover, `mproxy upgrade`) binds the port while the one it replaces still serves
 * it, the way the workers' listeners do; a fresh start first checks that nobody else holds it.
 */
import http from 'node:http'
import net from 'node:net'
import { ListenFailedError, oneLine } from '../../errors'
import { log } from '../../lib/logger'
import { describeListenError } from '../../worker/listeners'

export const METRICS_PATH = '/metrics'

/** What the endpoint serves. */
export interface MetricsSource {
  readonly contentType: string
  render(): Promise<string>
}

export class MetricsServer {
  readonly #server: http.Server
  readonly #source: MetricsSource

  constructor(source: MetricsSource) {
    this.#source = source
    this.#server = http.createServer((req, res) => void this.#answer(req, res))
    this.#server.on('clientError', (_err, socket) => socket.destroy())
  }

  /** The port it listens on (the one the system picked for port 0); 0 before it listens. */
  get port(): number {
    const address = this.#server.address()
    return typeof address === 'object' && address ? address.port : 0
  }

  /**
   * Listens on `port`. `joining`: a primary being replaced may hold the port, and shares it
   * until it stops; otherwise a port held by anyone fails.
   */
  async listen(port: number, joining: boolean): Promise<void> {
    try {
      if (!joining && port !== 0) await listenOn(net.createServer(), { port, exclusive: true }).then((probe) => closeServer(probe))
      await listenOn(this.#server, { port, reusePort: true })
    } catch (err) {
      throw new ListenFailedError(`cannot listen on metrics port ${port}: ${describeListenError(err as NodeJS.ErrnoException)}`)
    }
  }

  async close(): Promise<void> {
    if (!this.#server.listening) return
    const closed = closeServer(this.#server)
    this.#server.closeAllConnections()
    await closed
  }

  // Private

  async #answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== METRICS_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found: metrics are at /metrics\n')
      return
    }
    try {
      const body = await this.#source.render()
      res.writeHead(200, { 'content-type': this.#source.contentType, 'content-length': Buffer.byteLength(body) })
      res.end(req.method === 'HEAD' ? undefined : body)
    } catch (err) {
      log('warn', 'metrics could not be collected', { error: oneLine(err) })
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics could not be collected: ${oneLine(err)}\n`)
    }
  }
}

function listenOn<S extends net.Server>(server: S, options: net.ListenOptions): Promise<S> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options, () => {
      server.off('error', reject)
      resolve(server)
    })
  })
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}
