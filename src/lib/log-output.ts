/**
 * Batched asynchronous writes of log lines to a file descriptor, with an error policy that never
 * blocks or stops the process (see LogOutput). The logger (logger.ts) writes through one of them.
 */
import fs from 'node:fs'
import type { DestinationStream } from 'pino'

/** How long a request line may wait in its batch before the batch is written. */
const FLUSH_INTERVAL_MS = 100
/** Size of a batch; a full batch is written without waiting for FLUSH_INTERVAL_MS. */
const BATCH_BYTES = 64 * 1024
/** Bytes that may wait for a slow or failing stdout; lines beyond it are dropped (and counted). */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024
/** After EAGAIN (stdout is a non-blocking pipe whose reader is behind), the wait before trying again. */
const RETRY_DELAY_MS = 50
/** Most batches in one `writev`: Linux takes 1024 (IOV_MAX). */
const MAX_WRITE_BATCHES = 256
/** At exit, how long the last synchronous writes may wait for a reader that is behind. */
const EXIT_FLUSH_TIMEOUT_MS = 1_000
/** Write errors after which the descriptor can never take a write again. */
export const CLOSED_CODES = new Set(['EPIPE', 'EBADF', 'ECONNRESET', 'ENOTCONN'])
/** Ends a line that a failed write left half-written, before the next batch. */
const NEWLINE = Buffer.from('\n')
const SLEEP_CELL = new Int32Array(new SharedArrayBuffer(4))

interface Batch {
  data: Buffer
  lines: number
}
/**
 * Batched asynchronous writes of log lines to a file descriptor. What a write error does:
 * - EAGAIN (a non-blocking pipe whose reader is behind): the write is tried again after
 *   RETRY_DELAY_MS; new batches wait meanwhile, up to MAX_QUEUED_BYTES.
 * - EPIPE and the other CLOSED_CODES (the reader went away): nothing can ever be written to this
 *   descriptor again, so everything waiting and everything logged from now on is dropped, without
 *   another try.
 * - Anything else (ENOSPC, EDQUOT, EIO, ...): the batches waiting are dropped, and the next batch is
 *   tried again. A full disk is usually freed while the proxy keeps running for months, and a failed
 *   try costs one syscall per batch, not per line.
 * `onFailure` hears of each failure (the logger reports the first on stderr); after lines were
 * dropped, the next successful write is followed by `onDropped` with their count.
 */
export class LogOutput implements DestinationStream {
  readonly #fd: number
  readonly #onFailure: (err: NodeJS.ErrnoException, closed: boolean) => void
  readonly #onDropped: (lines: number, reason: string) => void
  #batch = Buffer.allocUnsafe(BATCH_BYTES)
  #batchBytes = 0
  #batchLines = 0
  /** Batches to write, in order. The first is written from #offset on; a write takes all it can. */
  #queue: Batch[] = []
  #queuedBytes = 0
  #offset = 0
  /** How many of the first batches a write in the thread pool has taken (0: none is in flight). */
  #inFlight = 0
  #flushingSync = false
  #retryTimer: NodeJS.Timeout | undefined
  #flushTimer: NodeJS.Timeout | undefined
  #closed = false
  #droppedLines = 0
  #dropReason = ''

  constructor(
    fd: number,
    onFailure: (err: NodeJS.ErrnoException, closed: boolean) => void,
    onDropped: (lines: number, reason: string) => void,
  ) {
    this.#fd = fd
    this.#onFailure = onFailure
    this.#onDropped = onDropped
  }

  /**
   * pino's entry point: a lifecycle line, written at once. Lifecycle lines are few and tell what
   * the proxy did, so their batch is queued even beyond MAX_QUEUED_BYTES.
   */
  write(line: string): void {
    this.append(line)
    this.#seal(true)
    this.#writeNext()
  }

  /** Adds a line (ending in "\n") to the current batch, which is written within FLUSH_INTERVAL_MS. */
  append(line: string): void {
    if (this.#closed) return
    // Worst case of UTF-8: three bytes per UTF-16 unit.
    const maxBytes = line.length * 3
    if (this.#batchBytes + maxBytes > BATCH_BYTES) {
      this.flush()
      if (maxBytes > BATCH_BYTES) {
        this.#enqueue({ data: Buffer.from(line), lines: 1 })
        this.#writeNext()
        return
      }
    }
    this.#batchBytes += this.#batch.write(line, this.#batchBytes)
    this.#batchLines++
    this.#flushTimer ??= setTimeout(this.#onFlushTimer, FLUSH_INTERVAL_MS).unref()
  }

  /** Hands the current batch to the writer now. */
  flush(): void {
    this.#seal(false)
    this.#writeNext()
  }

  /**
   * Writes everything waiting synchronously, as far as the descriptor takes it: for the exit.
   * Batches already in the thread pool are left to finish there (the process does not exit before
   * libuv has joined its threads); the batches after them may then land first.
   */
  flushSync(): void {
    // No asynchronous write may start meanwhile: it could land after the synchronous ones.
    this.#flushingSync = true
    try {
      this.#seal(true)
      if (this.#retryTimer) clearTimeout(this.#retryTimer)
      this.#retryTimer = undefined
      const deadline = Date.now() + EXIT_FLUSH_TIMEOUT_MS
      const next = this.#inFlight
      while (!this.#closed && this.#queue.length > next) {
        const batch = this.#queue[next]
        let offset = next === 0 ? this.#offset : 0
        try {
          while (offset < batch.data.length) {
            try {
              offset += fs.writeSync(this.#fd, batch.data, offset, batch.data.length - offset)
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() >= deadline) throw err
              Atomics.wait(SLEEP_CELL, 0, 0, 10)
            }
          }
        } catch (err) {
          if (next === 0) this.#offset = offset
          this.#onWriteError(err as NodeJS.ErrnoException, false)
          return
        }
        this.#queue.splice(next, 1)
        this.#queuedBytes -= batch.data.length
        if (next === 0) this.#offset = 0
        // Logged into a batch of its own, which this loop writes next.
        this.#reportDropped()
      }
    } finally {
      this.#flushingSync = false
    }
  }

  // Private

  readonly #onFlushTimer = (): void => {
    this.#flushTimer = undefined
    this.flush()
  }

  /** Queues the current batch; `overCap`: even beyond MAX_QUEUED_BYTES. */
  #seal(overCap: boolean): void {
    if (this.#flushTimer) clearTimeout(this.#flushTimer)
    this.#flushTimer = undefined
    if (this.#batchBytes === 0) return
    this.#enqueue({ data: this.#batch.subarray(0, this.#batchBytes), lines: this.#batchLines }, overCap)
    this.#batch = Buffer.allocUnsafe(BATCH_BYTES)
    this.#batchBytes = 0
    this.#batchLines = 0
  }

  #enqueue(batch: Batch, overCap = false): void {
    if (!overCap && this.#queue.length > 0 && this.#queuedBytes + batch.data.length > MAX_QUEUED_BYTES) {
      this.#drop(batch.lines, 'stdout is not keeping up')
      return
    }
    this.#queue.push(batch)
    this.#queuedBytes += batch.data.length
  }

  /**
   * Writes everything queued with one `writev`: its completion runs once per turn of the event
   * loop, so a write per batch could not keep up with a busy worker.
   */
  #writeNext(): void {
    if (this.#inFlight > 0 || this.#retryTimer || this.#flushingSync || this.#closed || this.#queue.length === 0) return
    const count = Math.min(this.#queue.length, MAX_WRITE_BATCHES)
    this.#inFlight = count
    const buffers = new Array<Buffer>(count)
    for (let i = 0; i < count; i++) buffers[i] = this.#queue[i].data
    if (this.#offset > 0) buffers[0] = buffers[0].subarray(this.#offset)
    fs.writev(this.#fd, buffers, null, this.#onWritten)
  }

  readonly #onWritten = (err: NodeJS.ErrnoException | null, written: number): void => {
    this.#inFlight = 0
    if (this.#closed) return
    if (err) return this.#onWriteError(err, true)
    // Nothing written without an error: wait rather than spin on it.
    if (written === 0) return this.#retryLater()
    let left = written
    while (left > 0) {
      const batch = this.#queue[0]
      const rest = batch.data.length - this.#offset
      if (left < rest) {
        this.#offset += left
        break
      }
      left -= rest
      this.#queue.shift()
      this.#queuedBytes -= batch.data.length
      this.#offset = 0
    }
    this.#reportDropped()
    this.#writeNext()
  }

  /** After a successful write: the count of lines dropped before it, as a line of its own. */
  #reportDropped(): void {
    if (this.#droppedLines === 0) return
    const lines = this.#droppedLines
    this.#droppedLines = 0
    this.#onDropped(lines, this.#dropReason)
  }

  #onWriteError(err: NodeJS.ErrnoException, retryEAGAIN: boolean): void {
    const code = err.code ?? ''
    if (code === 'EAGAIN' && retryEAGAIN) return this.#retryLater()
    if (CLOSED_CODES.has(code)) return this.#close(err)
    const halfWritten = this.#offset > 0 || this.#queue[0]?.data === NEWLINE
    // Batches in the thread pool (when flushSync fails) finish on their own.
    const keep = this.#inFlight
    for (const batch of this.#queue.splice(keep)) {
      this.#queuedBytes -= batch.data.length
      this.#drop(batch.lines, code || err.message)
    }
    if (keep === 0) {
      this.#offset = 0
      if (halfWritten) this.#enqueue({ data: NEWLINE, lines: 0 })
    }
    this.#onFailure(err, false)
  }

  #retryLater(): void {
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.#writeNext()
    }, RETRY_DELAY_MS).unref()
  }

  #drop(lines: number, reason: string): void {
    this.#droppedLines += lines
    this.#dropReason = reason
  }

  #close(err: NodeJS.ErrnoException): void {
    this.#closed = true
    if (this.#flushTimer) clearTimeout(this.#flushTimer)
    if (this.#retryTimer) clearTimeout(this.#retryTimer)
    this.#flushTimer = this.#retryTimer = undefined
    this.#queue = []
    this.#queuedBytes = this.#offset = this.#batchBytes = this.#batchLines = 0
    this.#onFailure(err, true)
  }
}
