/**
 * The primary's side of the control API: an HTTP server on the unix socket. Each route parses
 * its typed request and delegates to the registry, supervisor or takeover in one call.
 */
import http from 'node:http'
import fs from 'node:fs/promises'
import { MproxyError, oneLine } from '../errors'
import { log } from '../lib/logger'
import {
  COMMIT_REQUEST, DEPLOY_REQUEST, PAUSE_REQUEST, PREPARE_REQUEST, REMOVE_REQUEST, RESUME_REQUEST, ROLLOUT_DEPLOY_REQUEST, ROLLOUT_SET_REQUEST,
  ROLLOUT_STOP_REQUEST, STOP_REQUEST, parseRequest,
} from './schemas'
import {
  ROUTES, type CommitRequest, type CommitResponse, type DeployRequest, type PauseRequest, type PrepareRequest, type PrepareResponse,
  type RemoveRequest, type ResumeRequest, type RolloutDeployRequest, type RolloutSetRequest, type RolloutStopRequest, type StopRequest,
  type StreamEvent,
} from './protocol'

/** Requests are small JSON documents; anything larger is a mistake. */
const MAX_BODY_BYTES = 64 * 1024

export interface ControlHandlers {
  deploy(request: DeployRequest, progress: (message: string) => void): Promise<string>
  remove(request: RemoveRequest, progress: (message: string) => void): Promise<string>
  rolloutDeploy(request: RolloutDeployRequest, progress: (message: string) => void): Promise<string>
  rolloutSet(request: RolloutSetRequest, progress: (message: string) => void): Promise<string>
  rolloutStop(request: RolloutStopRequest, progress: (message: string) => void): Promise<string>
  pause(request: PauseRequest, progress: (message: string) => void): Promise<string>
  stop(request: StopRequest, progress: (message: string) => void): Promise<string>
  resume(request: ResumeRequest, progress: (message: string) => void): Promise<string>
  reload(progress: (message: string) => void): Promise<string>
  upgrade(progress: (message: string) => void): Promise<string>
  /**
   * Stops changes for a takeover and calls `prepared` once the state is saved. The answer stays
   * open until the takeover ends; `dropped` aborts if the new primary's connection closes first.
   */
  prepare(request: PrepareRequest, prepared: (answer: PrepareResponse) => void, dropped: AbortSignal): Promise<string>
  commit(request: CommitRequest): CommitResponse
  list(): Promise<unknown>
  status(): unknown
}

export class ControlServer {
  readonly #server: http.Server
  readonly #socketPath: string
  /** Where this process binds its socket before `publish` moves it to the socket path. */
  readonly #ownPath: string

  constructor(socketPath: string, handlers: ControlHandlers) {
    this.#socketPath = socketPath
    this.#ownPath = `${socketPath}.${process.pid}`
    this.#server = http.createServer((req, res) => void this.#route(req, res, handlers))
  }

  /** Listens on a path of this process's own; clients reach it once `publish` has run. */
  async listen(): Promise<void> {
    await fs.rm(this.#ownPath, { force: true })
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(this.#ownPath, () => resolve())
    })
    await fs.chmod(this.#ownPath, 0o600)
  }

  /**
   * Renames the listening socket over the socket path, atomically: a takeover replaces the old
   * primary's socket with no moment where the path is missing or refuses. Closing a unix server
   * unlinks the path it was bound to, and that is this process's own path, gone since the rename:
   * so a primary that has handed over never deletes the socket its successor owns.
   */
  async publish(): Promise<void> {
    await fs.rename(this.#ownPath, this.#socketPath)
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  // Private

  async #route(req: http.IncomingMessage, res: http.ServerResponse, handlers: ControlHandlers): Promise<void> {
    try {
      const route = `${req.method} ${req.url}`
      switch (route) {
        case `${ROUTES.deploy.method} ${ROUTES.deploy.path}`: {
          const request = parseRequest(DEPLOY_REQUEST, 'deploy', await readJson(req))
          return await stream(res, (out) => handlers.deploy(request, out.progress))
        }
        case `${ROUTES.remove.method} ${ROUTES.remove.path}`: {
          const request = parseRequest(REMOVE_REQUEST, 'remove', await readJson(req))
          return await stream(res, (out) => handlers.remove(request, out.progress))
        }
        case `${ROUTES.rolloutDeploy.method} ${ROUTES.rolloutDeploy.path}`: {
          const request = parseRequest(ROLLOUT_DEPLOY_REQUEST, 'rollout deploy', await readJson(req))
          return await stream(res, (out) => handlers.rolloutDeploy(request, out.progress))
        }
        case `${ROUTES.rolloutSet.method} ${ROUTES.rolloutSet.path}`: {
          const request = parseRequest(ROLLOUT_SET_REQUEST, 'rollout set', await readJson(req))
          return await stream(res, (out) => handlers.rolloutSet(request, out.progress))
        }
        case `${ROUTES.rolloutStop.method} ${ROUTES.rolloutStop.path}`: {
          const request = parseRequest(ROLLOUT_STOP_REQUEST, 'rollout stop', await readJson(req))
          return await stream(res, (out) => handlers.rolloutStop(request, out.progress))
        }
        case `${ROUTES.pause.method} ${ROUTES.pause.path}`: {
          const request = parseRequest(PAUSE_REQUEST, 'pause', await readJson(req))
          return await stream(res, (out) => handlers.pause(request, out.progress))
        }
        case `${ROUTES.stop.method} ${ROUTES.stop.path}`: {
          const request = parseRequest(STOP_REQUEST, 'stop', await readJson(req))
          return await stream(res, (out) => handlers.stop(request, out.progress))
        }
        case `${ROUTES.resume.method} ${ROUTES.resume.path}`: {
          const request = parseRequest(RESUME_REQUEST, 'resume', await readJson(req))
          return await stream(res, (out) => handlers.resume(request, out.progress))
        }
        case `${ROUTES.reload.method} ${ROUTES.reload.path}`:
          return await stream(res, (out) => handlers.reload(out.progress))
        case `${ROUTES.upgrade.method} ${ROUTES.upgrade.path}`:
          return await stream(res, (out) => handlers.upgrade(out.progress))
        case `${ROUTES.prepare.method} ${ROUTES.prepare.path}`: {
          const request = parseRequest(PREPARE_REQUEST, 'prepare', await readJson(req))
          return await stream(res, (out) => handlers.prepare(request, out.prepared, out.dropped))
        }
        case `${ROUTES.commit.method} ${ROUTES.commit.path}`:
          return sendJson(res, 200, handlers.commit(parseRequest(COMMIT_REQUEST, 'commit', await readJson(req))))
        case `${ROUTES.list.method} ${ROUTES.list.path}`:
          return sendJson(res, 200, await handlers.list())
        case `${ROUTES.status.method} ${ROUTES.status.path}`:
          return sendJson(res, 200, handlers.status())
        default:
          return sendJson(res, 404, { code: 'MPROXY_ERR_NOT_FOUND', message: `no control route ${route}` })
      }
    } catch (err) {
      const status = err instanceof MproxyError ? err.httpStatus : 500
      if (!(err instanceof MproxyError)) log('error', 'control request failed', { url: req.url, error: oneLine(err) })
      sendJson(res, status, errorBody(err))
    }
  }
}

function errorBody(err: unknown): { code: string; message: string } {
  return { code: err instanceof MproxyError ? err.code : 'MPROXY_ERR_INTERNAL', message: oneLine(err) }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** What a streamed answer's work may send, and how it learns that the client has gone. */
interface StreamOutput {
  progress(message: string): void
  prepared(answer: PrepareResponse): void
  /** Aborts when the client's connection closes before the answer is complete. */
  dropped: AbortSignal
}

/** Streams progress as NDJSON, then one `done` or `error` event. */
async function stream(res: http.ServerResponse, work: (out: StreamOutput) => Promise<string>): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' })
  // Sent at once: a takeover's `prepare` stays open for a while after its first line.
  res.flushHeaders()
  const write = (event: StreamEvent) => {
    if (!res.writableEnded) res.write(JSON.stringify(event) + '\n')
  }
  const dropped = new AbortController()
  res.once('close', () => {
    if (!res.writableFinished) dropped.abort()
  })
  try {
    const message = await work({
      progress: (message) => write({ type: 'progress', message }),
      prepared: (answer) => write({ type: 'prepared', answer }),
      dropped: dropped.signal,
    })
    write({ type: 'done', message })
  } catch (err) {
    if (!(err instanceof MproxyError)) log('error', 'control request failed', { error: oneLine(err) })
    write({ type: 'error', ...errorBody(err) })
  }
  res.end()
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new MproxyError('request too large')
    chunks.push(chunk as Buffer)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown
  } catch {
    throw new MproxyError('request body is not valid JSON')
  }
}
