/** The CLI's side of the control API: one typed call per verb over the unix socket. */
import http from 'node:http'
import path from 'node:path'
import { MproxyError, ProxyNotRunningError } from '../errors'
import { ROUTES, SOCKET_NAME, type DeployRequest, type ListResponse, type RemoveRequest, type StatusResponse, type StreamEvent } from './protocol'

class RemoteError extends MproxyError {
  override readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.code = code
  }
}

type Route = (typeof ROUTES)[keyof typeof ROUTES]

export class ControlClient {
  readonly socketPath: string

  constructor(stateDir: string) {
    this.socketPath = path.join(stateDir, SOCKET_NAME)
  }

  deploy(request: DeployRequest, onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.deploy, request, onProgress)
  }

  remove(request: RemoveRequest, onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.remove, request, onProgress)
  }

  reload(onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.reload, {}, onProgress)
  }

  list(): Promise<ListResponse> {
    return this.#json(ROUTES.list)
  }

  status(): Promise<StatusResponse> {
    return this.#json(ROUTES.status)
  }

  // Private

  async #json<T>(route: Route, body?: unknown): Promise<T> {
    const res = await this.#request(route, body)
    const text = await readAll(res)
    const data = JSON.parse(text) as T & { code?: string; message?: string }
    if (res.statusCode !== 200) throw new RemoteError(data.code ?? 'MPROXY_ERR', data.message ?? `HTTP ${res.statusCode}`)
    return data
  }

  async #stream(route: Route, body: unknown, onProgress: (message: string) => void): Promise<string> {
    const res = await this.#request(route, body)
    if (res.statusCode !== 200) {
      const data = JSON.parse(await readAll(res)) as { code?: string; message?: string }
      throw new RemoteError(data.code ?? 'MPROXY_ERR', data.message ?? `HTTP ${res.statusCode}`)
    }
    let buffered = ''
    let result: StreamEvent | undefined
    for await (const chunk of res) {
      buffered += (chunk as Buffer).toString('utf8')
      let newline: number
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const event = JSON.parse(buffered.slice(0, newline)) as StreamEvent
        buffered = buffered.slice(newline + 1)
        if (event.type === 'progress') onProgress(event.message)
        else result = event
      }
    }
    if (!result) throw new MproxyError('the proxy closed the connection before the operation finished (did it stop?)')
    if (result.type === 'error') throw new RemoteError(result.code, result.message)
    return result.type === 'done' ? result.message : ''
  }

  #request(route: Route, body?: unknown): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const req = http.request({
        socketPath: this.socketPath,
        method: route.method,
        path: route.path,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      }, resolve)
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          reject(new ProxyNotRunningError(
            `no mproxy is running with state dir ${path.dirname(this.socketPath)} (no control socket at ${this.socketPath}); start one with: mproxy run`))
        } else if (err.code === 'EACCES') {
          reject(new MproxyError(`permission denied on ${this.socketPath}: run as the user that runs mproxy`))
        } else {
          reject(err)
        }
      })
      req.end(payload)
    })
  }
}

async function readAll(res: http.IncomingMessage): Promise<string> {
  let text = ''
  for await (const chunk of res) text += (chunk as Buffer).toString('utf8')
  return text
}
