/**
 * Request bodies as they are sent upstream: the client's stream passed on as it arrives (with a
 * size limit or without), or a body buffered whole (body-guard.ts).
 */
import type { IncomingMessage } from 'node:http'
import { RequestBodyTooLargeError } from '../errors'

/** The client's stream itself, a buffered body whole or in chunks, or no body. */
export type UpstreamBody = IncomingMessage | Buffer | AsyncIterable<Buffer> | null

/**
 * The client's upload, passed on chunk by chunk with one pass of the event loop's poll phase
 * between two chunks. An app may answer early (413) and close its connection: the next chunk
 * written then fails, and the failure would hide the answer still unread in the socket. Reading
 * first means the answer is seen before that write.
 */
export async function* uploadBody(req: IncomingMessage): AsyncGenerator<Buffer> {
  for await (const chunk of req) {
    yield chunk as Buffer
    await afterPollPhase()
  }
}

/** Resolves in the check phase after the next poll phase (setImmediate from a check phase). */
function afterPollPhase(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)))
}

/** The client's upload as it arrives, failing once it passes `max` bytes (see uploadBody). */
export async function* limitedUpload(req: IncomingMessage, max: number): AsyncGenerator<Buffer> {
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > max) throw new RequestBodyTooLargeError('request body over --max-request-body')
    yield chunk as Buffer
    await afterPollPhase()
  }
}
