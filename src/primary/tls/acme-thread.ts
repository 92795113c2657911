/**
 * The primary's side of the ACME thread (acme-thread-entry.ts), which talks to the CA so that
 * loading acme-client and building CSRs never hold the primary's event loop. The thread starts
 * with the first request and stops once idle, so a proxy that orders nothing, or a renewal every
 * two months, does not keep acme-client's ~15 MiB loaded.
 */
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import type { AcmeAccount, ChallengeType, FromThread, ToThread } from './acme-thread-messages'

/** With no request for this long, the thread stops; the next request starts a new one. */
const ACME_THREAD_IDLE_MS = 5 * 60_000

/** What the order's owner does when the thread reports a challenge. */
export interface ChallengeEvents {
  /** The challenge is set up at the CA; resolves once the workers can answer it. */
  created(challenge: { challengeType: string; alpn?: { cert: string; key: string }; keyAuthorizationMatches: boolean }): Promise<void>
  removed(): Promise<void>
}

export interface IssuedCertificate {
  cert: string
  key: string
  accountUrl: string
}

export interface Registration {
  accountUrl: string | undefined
  /** What the CA answered the registration itself, when that was an error. */
  answeredWithError?: string
  /** Why there is no account URL. */
  error?: string
}

type Answer = Extract<FromThread, { type: 'issued' | 'registered' | 'failed' }>

interface Pending {
  settle: (answer: Answer) => void
  fail: (err: Error) => void
  challenges?: ChallengeEvents
}

export class AcmeThread {
  readonly #pending = new Map<number, Pending>()
  #worker: Worker | undefined
  #nextId = 1
  #idleTimer: NodeJS.Timeout | undefined

  /** Orders a certificate for `host`; rejects with the CA's error worded for the operator. */
  async order(account: AcmeAccount, host: string, challengeType: ChallengeType, thumbprint: string, challenges: ChallengeEvents): Promise<IssuedCertificate> {
    const answer = await this.#request((id) => ({ type: 'order', id, account, host, challengeType, thumbprint }), challenges)
    if (answer.type === 'issued') return { cert: answer.cert, key: answer.key, accountUrl: answer.accountUrl }
    throw new Error(answer.type === 'failed' ? answer.error : `unexpected answer ${answer.type} to an order`)
  }

  /** Registers the account's key anew (the CA lost the account). */
  async register(account: AcmeAccount): Promise<Registration> {
    const answer = await this.#request((id) => ({ type: 'register', id, account }))
    if (answer.type === 'registered') return { accountUrl: answer.accountUrl, answeredWithError: answer.answeredWithError, error: answer.error }
    throw new Error(answer.type === 'failed' ? answer.error : `unexpected answer ${answer.type} to a registration`)
  }

  stop(): void {
    clearTimeout(this.#idleTimer)
    void this.#worker?.terminate()
    this.#worker = undefined
  }

  // Private

  #request(message: (id: number) => ToThread, challenges?: ChallengeEvents): Promise<Answer> {
    const id = this.#nextId++
    const worker = this.#start()
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { settle: resolve, fail: reject, challenges })
      worker.postMessage(message(id))
    })
  }

  #start(): Worker {
    clearTimeout(this.#idleTimer)
    if (this.#worker) return this.#worker
    const worker = new Worker(path.join(__dirname, 'acme-thread-entry.js'))
    // The thread never keeps the primary alive: it only ever answers the primary's requests.
    worker.unref()
    worker.on('message', (message: FromThread) => this.#receive(worker, message))
    worker.on('error', (err) => this.#lost(worker, err))
    worker.on('exit', (code) => this.#lost(worker, new Error(`the ACME thread stopped (exit code ${code})`)))
    this.#worker = worker
    return worker
  }

  #receive(worker: Worker, message: FromThread): void {
    const pending = this.#pending.get(message.id)
    if (!pending) return
    switch (message.type) {
      case 'challenge':
      case 'challenge-removed': {
        const acted = message.type === 'challenge' ? pending.challenges?.created(message) : pending.challenges?.removed()
        void Promise.resolve(acted).then(
          () => worker.postMessage({ type: 'ack', id: message.id } satisfies ToThread),
          (err: unknown) => worker.postMessage({ type: 'ack', id: message.id, error: err instanceof Error ? err.message : String(err) } satisfies ToThread),
        )
        return
      }
      case 'issued':
      case 'registered':
      case 'failed':
        this.#pending.delete(message.id)
        pending.settle(message)
        this.#idleLater()
        return
    }
  }

  /** The thread died (or was stopped): whatever it had in hand fails, and the next request starts a new one. */
  #lost(worker: Worker, err: Error): void {
    if (this.#worker !== worker) return
    this.#worker = undefined
    for (const pending of this.#pending.values()) pending.fail(err)
    this.#pending.clear()
  }

  #idleLater(): void {
    if (this.#pending.size > 0) return
    clearTimeout(this.#idleTimer)
    this.#idleTimer = setTimeout(() => this.stop(), ACME_THREAD_IDLE_MS)
    this.#idleTimer.unref()
  }
}
