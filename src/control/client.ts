/** The CLI's side of the control API: one typed call per verb over the unix socket. */
import http from 'node:http'
import path from 'node:path'
import { MproxyError, ProxyNotRunningError } from '../errors'
import {
  ROUTES, SOCKET_NAME, type CommitRequest, type CommitResponse, type DeployRequest, type ListResponse, type PauseRequest,
  type PrepareRequest, type PrepareResponse, type RemoveRequest, type ResumeRequest, type RolloutDeployRequest, type RolloutSetRequest,
  type RolloutStopRequest, type StatusResponse, type StopRequest,
  type StreamEvent,
} from './protocol'

class RemoteError extends MproxyError {
  override readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.code = code
  }
}

type Route = (typeof ROUTES)[keyof typeof ROUTES]

/** An open `prepare`: the running primary takes no changes while it lasts. */
export interface TakeoverLease {
  answer: PrepareResponse
  /**
   * Settles when the takeover ends: resolves once the running primary has handed over; rejects
   * when it gave up (its error) or the connection dropped.
   */
  ended: Promise<string>
  /** Closes the connection: before a commit, the running primary resumes as if nothing happened. */
  release(): void
}

export class ControlClient {
  readonly socketPath: string

  /** `stateDir`: the proxy of that state dir (`<state-dir>/mproxy.sock`); `{ socket }`: the proxy listening there. */
  constructor(location: string | { socket: string }) {
    this.socketPath = typeof location === 'string' ? path.join(location, SOCKET_NAME) : location.socket
  }

  deploy(request: DeployRequest, onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.deploy, request, onProgress)
  }

  remove(request: RemoveRequest, onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.remove, request, onProgress)
  }

  rolloutDeploy(request: RolloutDeployRequest, onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.rolloutDeploy, request, onProgress)
  }

  rolloutSet(request: RolloutSetRequest, onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.rolloutSet, request, onProgress)
  }

  rolloutStop(request: RolloutStopRequest, onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.rolloutStop, request, onProgress)
  }

  pause(request: PauseRequest, onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.pause, request, onProgress)
  }

  stop(request: StopRequest, onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.stop, request, onProgress)
  }

  resume(request: ResumeRequest, onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.resume, request, onProgress)
  }

  reload(onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.reload, {}, onProgress)
  }

  upgrade(onProgress: (message: string) => void): Promise<string> {
    return this.#stream(ROUTES.upgrade, {}, onProgress)
  }

  /** Asks the running primary to hand over; resolves once it is prepared (see TakeoverLease). */
  prepare(request: PrepareRequest): Promise<TakeoverLease> {
    const connection = new AbortController()
    return new Promise((resolve, reject) => {
      const ended = this.#stream(ROUTES.prepare, request, () => {}, {
        signal: connection.signal,
        onPrepared: (answer) => resolve({ answer, ended, release: () => connection.abort() }),
      })
      ended.catch(() => {})
      // Before `prepared`, an end of any kind is a refusal; after it, these do nothing.
      ended.then(() => reject(new MproxyError('the running mproxy ended the takeover before it was prepared')), reject)
    })
  }

  commit(request: CommitRequest): Promise<CommitResponse> {
    return this.#json(ROUTES.commit, request)
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

  async #stream(
    route: Route, body: unknown, onProgress: (message: string) => void,
    options: { onPrepared?: (answer: PrepareResponse) => void; signal?: AbortSignal } = {},
  ): Promise<string> {
    const res = await this.#request(route, body, options.signal)
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
        else if (event.type === 'prepared') options.onPrepared?.(event.answer)
        else result = event
      }
    }
    if (!result) throw new MproxyError('the proxy closed the connection before the operation finished (did it stop?)')
    if (result.type === 'error') throw new RemoteError(result.code, result.message)
    return result.type === 'done' ? result.message : ''
  }

  #request(route: Route, body?: unknown, signal?: AbortSignal): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const req = http.request({
        socketPath: this.socketPath,
        method: route.method,
        path: route.path,
        signal,
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
