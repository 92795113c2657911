/** Small built-in pages for answers mproxy gives itself (no route, upstream failures). */
import type { ServerResponse } from 'node:http'

const TITLES: Record<number, string> = {
  404: 'Not Found',
  413: 'Content Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
}

const PAGES = new Map<number, Buffer>()

function page(status: number): Buffer {
  let body = PAGES.get(status)
  if (!body) {
    const title = `${status} ${TITLES[status] ?? 'Error'}`
    body = Buffer.from(`<!DOCTYPE html>\n<html><head><title>${title}</title></head>` +
      `<body><h1>${title}</h1><hr><p>mproxy</p></body></html>\n`)
    PAGES.set(status, body)
  }
  return body
}

/** Answers with a built-in page unless the response has already started. */
export function sendErrorPage(res: ServerResponse, status: number): void {
  if (res.headersSent || res.writableEnded) {
    res.destroy()
    return
  }
  const body = page(status)
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length })
  res.end(body)
}
