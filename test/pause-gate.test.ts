import type { IncomingMessage, ServerResponse } from 'node:http'
import { Exchange } from '../src/worker/exchange'
import { BUILT_IN_PAGES, ErrorPages } from '../src/worker/error-pages'
import { PauseGate, type GatedRoute } from '../src/worker/pause-gate'
import type { ServiceState } from '../src/options'

jest.mock('../src/lib/logger', () => ({ ...jest.requireActual('../src/lib/logger'), log: jest.fn() }))

const MAX_PAUSE_MS = 1_000

/** A client response that records the status and body it was answered with. */
function fakeResponse(): ServerResponse & { answered?: { status: number; body: string } } {
  const res = {
    headersSent: false,
    writableEnded: false,
    destroyed: false,
    answered: undefined as { status: number; body: string } | undefined,
    writeHead(status: number) {
      this.headersSent = true
      this.answered = { status, body: '' }
      return this
    },
    end(body?: Buffer) {
      this.writableEnded = true
      if (this.answered) this.answered.body = String(body ?? '')
    },
    destroy() {
      this.destroyed = true
    },
  }
  return res as unknown as ServerResponse & { answered?: { status: number; body: string } }
}

function heldExchange(path: string, startedAt: number): Exchange & { res: ReturnType<typeof fakeResponse> } {
  return new Exchange({ url: path } as IncomingMessage, fakeResponse(), startedAt, '127.0.0.1') as Exchange & { res: ReturnType<typeof fakeResponse> }
}

function route(state: ServiceState, dispatched: string[] = []): GatedRoute {
  return { state, pages: new ErrorPages({ 503: 'stopped: {{ .Message }}' }, 'Lunch'), dispatch: (exchange) => void dispatched.push(exchange.path) }
}

describe('PauseGate', () => {
  it('counts what it holds, and forgets a request whose client went away', () => {
    const changes: number[] = []
    const gate: PauseGate = new PauseGate('web', () => changes.push(gate.size))
    const [a, b] = [heldExchange('/a', 0), heldExchange('/b', 0)]
    gate.hold(a, MAX_PAUSE_MS)
    gate.hold(b, MAX_PAUSE_MS)
    a.owner?.release(a)
    a.owner?.release(a)
    expect([gate.size, changes]).toEqual([1, [1, 2, 1]])
  })

  it.each<[string, ServiceState | undefined, string[], Array<number | undefined>]>([
    ['resumed: proxied, oldest first', 'running', ['/first', '/second'], [undefined, undefined]],
    ['stopped: the service’s 503 page', 'stopped', [], [503, 503]],
    ['removed: the built-in 503 page', undefined, [], [503, 503]],
  ])('ends every wait when %s', (_case, state, dispatched, statuses) => {
    const gate = new PauseGate('web', () => {})
    const held = [heldExchange('/first', 0), heldExchange('/second', 1)]
    held.forEach((exchange) => gate.hold(exchange, MAX_PAUSE_MS))
    const seen: string[] = []
    gate.settle(state ? route(state, seen) : undefined)
    expect([gate.size, seen, held.map((exchange) => exchange.res.answered?.status)]).toEqual([0, dispatched, statuses])
    if (state === 'stopped') expect(held[0].res.answered?.body).toBe('stopped: Lunch')
    if (state === undefined) expect(held[0].res.answered?.body).toBe(BUILT_IN_PAGES.page(503).toString())
  })

  it('keeps holding while the new table still pauses the service', () => {
    const gate = new PauseGate('web', () => {})
    gate.hold(heldExchange('/a', 0), MAX_PAUSE_MS)
    gate.settle(route('paused'))
    expect(gate.size).toBe(1)
  })

  it('answers 504 to each request once its own max pause has passed', () => {
    const gate = new PauseGate('web', () => {})
    const [early, late] = [heldExchange('/early', 0), heldExchange('/late', 500)]
    gate.hold(early, MAX_PAUSE_MS)
    gate.hold(late, MAX_PAUSE_MS)

    gate.expire(MAX_PAUSE_MS - 1)
    expect([early.res.answered, late.res.answered]).toEqual([undefined, undefined])
    gate.expire(MAX_PAUSE_MS)
    expect([early.res.answered?.status, late.res.answered, gate.size]).toEqual([504, undefined, 1])
    gate.expire(MAX_PAUSE_MS + 500)
    expect([late.res.answered?.status, gate.size]).toEqual([504, 0])
  })
})
