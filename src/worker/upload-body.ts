/**
 * Request bodies as they are sent upstream: the client's stream passed on as it arrives (with a
 * size limit or without), or a body buffered whole (body-guard.ts).
 */
import type { IncomingMessage } from 'node:http'
import { RequestBodyTooLargeError } from '../errors'

/** The client's stream itself, a buffered body whole or in chunks, or no body. */
export type UpstreamBody = IncomingMessage | Buffer | AsyncIterable<Buffer> | null

/**
 * The client's upload as it arrives. When the upstream request ends before the upload does (an
 * early answer, an upstream error), the request stays open: the rest of the body is then read and
 * dropped while its connection closes (lingering-close.ts), rather than left to stall it.
 */
export function uploadBody(req: IncomingMessage): AsyncIterable<Buffer> {
  return req.iterator({ destroyOnReturn: false })
}

/** The client's upload as it arrives, failing once it passes `max` bytes (see uploadBody). */
export async function* limitedUpload(req: IncomingMessage, max: number): AsyncGenerator<Buffer> {
  let size = 0
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    size += (chunk as Buffer).length
    if (size > max) throw new RequestBodyTooLargeError('request body over --max-request-body')
    yield chunk as Buffer
  }
}
