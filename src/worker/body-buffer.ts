/**
 * One buffered body (a request's or a response's): the first bytes in memory, the rest in a
 * temporary file.
 *
 * The file is unlinked the moment it is created: only its open descriptor keeps it, so it is
 * gone once `destroy` closes that descriptor, and also when the worker exits or is killed, with
 * no sweep needed. Nothing of a body is ever visible in the temporary directory.
 */
import { randomBytes } from 'node:crypto'
import { open, unlink, type FileHandle } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { BufferFailedError } from '../errors'

/** Temporary files are `<os.tmpdir()>/mproxy-buffer-<pid>-<random>`. */
export const BUFFER_FILE_PREFIX = 'mproxy-buffer-'
/** Size of the reads that stream a spilled body back out. */
const READ_CHUNK_BYTES = 64 * 1024

export class BodyBuffer {
  /** Bytes kept so far, memory and file. */
  size = 0
  readonly #memoryLimit: number
  #memory: Buffer[] = []
  #memoryBytes = 0
  #file: Promise<FileHandle> | undefined = undefined
  #fileBytes = 0
  /** The last file write; each write waits for the one before. */
  #written: Promise<void> = Promise.resolve()
  #destroyed = false

  constructor(memoryLimit: number) {
    this.#memoryLimit = memoryLimit
  }

  /** Part of the body is in a temporary file. */
  get spilled(): boolean {
    return this.#file !== undefined
  }

  /**
   * Keeps a chunk. Undefined: it is in memory. A promise: it goes to the file, and the caller
   * should stop its source until the promise settles (it rejects when the write fails).
   */
  append(chunk: Buffer): Promise<void> | undefined {
    // The upstream client may hand over empty chunks (when resumed): nothing to store, nor to wait for.
    if (chunk.length === 0) return undefined
    this.size += chunk.length
    if (this.#file === undefined && this.#memoryBytes + chunk.length <= this.#memoryLimit) {
      this.#memory.push(chunk)
      this.#memoryBytes += chunk.length
      return undefined
    }
    if (this.#file === undefined) {
      this.#file = createTemporaryFile()
      // A failure to create it is reported by the write below.
      this.#file.catch(() => {})
    }
    const file = this.#file
    const position = this.#fileBytes
    this.#fileBytes += chunk.length
    this.#written = this.#written.then(async () => {
      try {
        const handle = await file
        let offset = 0
        while (offset < chunk.length) {
          const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset, position + offset)
          offset += bytesWritten
        }
      } catch (err) {
        throw failure(err)
      }
    })
    // Reported to whoever waits for it; a source already stopped (client gone) may not.
    this.#written.catch(() => {})
    return this.#written
  }

  /** Settles when every chunk appended so far is stored; rejects when a write failed. */
  flushed(): Promise<void> {
    return this.#written
  }

  /** The whole body in one buffer; only for a body that did not spill. */
  toBuffer(): Buffer {
    if (this.spilled) throw new Error('a spilled body is read with chunks()')
    return this.#memory.length === 1 ? this.#memory[0] : Buffer.concat(this.#memory, this.#memoryBytes)
  }

  /** The body from its first byte: the memory part, then the file in 64 KiB reads. */
  async *chunks(): AsyncGenerator<Buffer> {
    for (const chunk of this.#memory) yield chunk
    if (this.#file === undefined) return
    await this.#written
    const handle = await this.#file
    for (let position = 0; position < this.#fileBytes;) {
      if (this.#destroyed) throw new BufferFailedError('buffer destroyed while it was read')
      const length = Math.min(READ_CHUNK_BYTES, this.#fileBytes - position)
      const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(length), 0, length, position).catch((err: unknown) => {
        throw failure(err)
      })
      if (bytesRead === 0) throw new BufferFailedError('temporary file shorter than what was written to it')
      position += bytesRead
      yield bytesRead === length ? buffer : buffer.subarray(0, bytesRead)
    }
  }

  /** Frees the memory and closes the file (which removes it). Idempotent. */
  destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    this.#memory = []
    // A handle with a read or write under way is closed once that operation ends.
    this.#file?.then((handle) => handle.close()).catch(() => {})
  }
}

function failure(err: unknown): BufferFailedError {
  return err instanceof BufferFailedError ? err : new BufferFailedError(`temporary file: ${(err as Error).message}`)
}

/** Opens a new file readable and writable by this user only, and unlinks it at once. */
async function createTemporaryFile(): Promise<FileHandle> {
  const file = path.join(os.tmpdir(), `${BUFFER_FILE_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`)
  const handle = await open(file, 'wx+', 0o600)
  await unlink(file).catch(async (err: unknown) => {
    await handle.close()
    throw err
  })
  return handle
}
