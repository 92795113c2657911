/** Test helpers: Load */
import * as http from 'node:http'
import { SHORT_TIMEOUT_MS } from './timing'
import { onCleanup } from './cleanup'
import { RequestOptions, getBody, request } from './client'

export interface LoadResult {
  /** Responses with status 200. */
  ok: number
  /** Responses with another status, plus socket errors. */
  failed: number
  /** Body → count, for 200 responses. */
  bodies: Map<string, number>
  /** Status → count, for every response. */
  statuses: Map<number, number>
  /** The first few failures, described. */
  errors: string[]
  /** Socket error code (ECONNRESET, ECONNREFUSED ...) → count. */
  errorCodes: Map<string, number>
}

/** Every request of the run got a 200, and every one of `backends` answered some of them. */
export function expectAllServedBy(result: LoadResult, backends: { name: string }[]): void {
  expect(result.errors).toEqual([])
  expect(result.failed).toBe(0)
  expect([...result.statuses.keys()]).toEqual([200])
  for (const backend of backends) expect(result.bodies.get(backend.name)).toBeGreaterThan(0)
}

export interface Load {
  /** Counts so far, while the load keeps running. */
  snapshot(): LoadResult
  /** Stops issuing requests, waits for those in flight, and returns the totals. */
  stop(): Promise<LoadResult>
}

/**
 * Keeps `concurrency` clients busy, each on its own keep-alive connection (or, with
 * `newConnections`, a new connection per request, sent with `Connection: close`), sending GETs
 * back-to-back until stopped, and records every outcome.
 */
export function runLoad(port: number, opts: { concurrency: number; host?: string; path?: string; newConnections?: boolean }): Load {
  const result: LoadResult = { ok: 0, failed: 0, bodies: new Map(), statuses: new Map(), errors: [], errorCodes: new Map() }
  let running = true
  const agents: http.Agent[] = []
  const fail = (what: string): void => {
    result.failed++
    if (result.errors.length < 20) result.errors.push(what)
  }
  const client = async (): Promise<void> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(agent)
    while (running) {
      try {
        const res = await request(port, {
          host: opts.host,
          path: opts.path ?? '/',
          timeoutMs: SHORT_TIMEOUT_MS * 2,
          ...(opts.newConnections ? { agent: false, headers: { connection: 'close' } } : { agent }),
        })
        result.statuses.set(res.status, (result.statuses.get(res.status) ?? 0) + 1)
        if (res.status === 200) {
          result.ok++
          result.bodies.set(res.body, (result.bodies.get(res.body) ?? 0) + 1)
        } else {
          fail(`status ${res.status}: ${res.body.slice(0, 100)}`)
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
        result.errorCodes.set(code, (result.errorCodes.get(code) ?? 0) + 1)
        fail(`error: ${(err as Error).message}`)
      }
    }
  }
  const clients = Array.from({ length: opts.concurrency }, () => client())
  let stopped: Promise<LoadResult> | undefined
  const stop = (): Promise<LoadResult> => {
    running = false
    stopped ??= Promise.all(clients).then(() => {
      for (const agent of agents) agent.destroy()
      return result
    })
    return stopped
  }
  onCleanup(() => stop())
  return {
    snapshot: () => ({
      ...result, bodies: new Map(result.bodies), statuses: new Map(result.statuses), errors: [...result.errors], errorCodes: new Map(result.errorCodes),
    }),
    stop,
  }
}

// Small helpers for assertions
/** Which backend answered, for each of `n` fresh-connection GETs. */
export async function collectBodies(port: number, n: number, opts: RequestOptions = {}): Promise<Map<string, number>> {
  const bodies = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const body = await getBody(port, opts)
    bodies.set(body, (bodies.get(body) ?? 0) + 1)
  }
  return bodies
}

/** A target address on loopback where nothing listens (port 1 is never used by tests). */
export const REFUSED_TARGET = '127.0.0.1:1'
