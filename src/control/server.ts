/**
 * The primary's side of the control API: an HTTP server on the unix socket. Each route parses
 * its typed request and delegates to the registry or supervisor in one call.
 */
import http from 'node:http'
import fs from 'node:fs/promises'
import { MproxyError, oneLine } from '../errors'
import { log } from '../lib/logger'
import { ROUTES, type DeployRequest, type RemoveRequest, type StreamEvent } from './protocol'

/** Requests are small JSON documents; anything larger is a mistake. */
const MAX_BODY_BYTES = 64 * 1024

export interface ControlHandlers {
  deploy(request: DeployRequest, progress: (message: string) => void): Promise<string>
  remove(request: RemoveRequest, progress: (message: string) => void): Promise<string>
  reload(progress: (message: string) => void): Promise<string>
  list(): Promise<unknown>
  status(): unknown
}

export class ControlServer {
  readonly #server: http.Server
  readonly #socketPath: string

  constructor(socketPath: string, handlers: ControlHandlers) {
    this.#socketPath = socketPath
    this.#server = http.createServer((req, res) => void this.#route(req, res, handlers))
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(this.#socketPath, () => resolve())
    })
    await fs.chmod(this.#socketPath, 0o600)
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
          const request = await readJson<DeployRequest>(req)
          return await stream(res, (progress) => handlers.deploy(request, progress))
        }
        case `${ROUTES.remove.method} ${ROUTES.remove.path}`: {
          const request = await readJson<RemoveRequest>(req)
          return await stream(res, (progress) => handlers.remove(request, progress))
        }
        case `${ROUTES.reload.method} ${ROUTES.reload.path}`:
          return await stream(res, (progress) => handlers.reload(progress))
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

/** Streams progress as NDJSON, then one `done` or `error` event. */
async function stream(res: http.ServerResponse, work: (progress: (message: string) => void) => Promise<string>): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' })
  const write = (event: StreamEvent) => {
    if (!res.writableEnded) res.write(JSON.stringify(event) + '\n')
  }
  try {
    const message = await work((message) => write({ type: 'progress', message }))
    write({ type: 'done', message })
  } catch (err) {
    if (!(err instanceof MproxyError)) log('error', 'control request failed', { error: oneLine(err) })
    write({ type: 'error', ...errorBody(err) })
  }
  res.end()
}

async function readJson<T>(req: http.IncomingMessage): Promise<T> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new MproxyError('request too large')
    chunks.push(chunk as Buffer)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T
  } catch {
    throw new MproxyError('request body is not valid JSON')
  }
}
