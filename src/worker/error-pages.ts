/**
 * The pages of answers mproxy gives itself (no route, upstream failures, a stopped service):
 * built-in ones for 404, 413, 502, 503 and 504, a bare `<h1>` for other statuses, and a
 * service's own pages (`deploy --error-pages`) in their place. Pages are rendered once per
 * route table and service, on first use, never per request.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http'
import { renderMessageTemplate } from '../lib/message-template'

/** What a stopped service's 503 page says when `mproxy stop` was given no message. */
export const DEFAULT_STOP_MESSAGE = 'The service is down for maintenance or overloaded for a moment. Please try again shortly.'

interface BuiltIn {
  reason: string
  text: string
}

const BUILT_IN: Record<number, BuiltIn> = {
  404: { reason: 'Not Found', text: 'There is nothing at this address. Check the link, or start again from the home page.' },
  413: { reason: 'Content Too Large', text: 'What you tried to send is larger than this site accepts.' },
  502: { reason: 'Bad Gateway', text: 'The application answered in a way that could not be understood. Please try again in a moment.' },
  // Its text is the stop message (see DEFAULT_STOP_MESSAGE).
  503: { reason: 'Service Temporarily Unavailable', text: '{{ .Message }}' },
  504: { reason: 'Gateway Timeout', text: 'The application did not answer in time. Please try again in a moment.' },
}

/** One self-contained page: inline CSS, no external assets, not to be indexed. */
function builtInTemplate(status: number, { reason, text }: BuiltIn): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>${status} — ${reason}</title>
<style>
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:#eef2f8;color:#1e293b;font:16px/1.6 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:34rem;margin:2rem;padding:2.5rem 2rem;background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(15,23,42,.08),0 8px 24px rgba(15,23,42,.06);text-align:center}
.status{margin:0;font-size:4.5rem;font-weight:700;line-height:1;letter-spacing:-.03em;color:#2563eb}
h1{margin:.75rem 0 .5rem;font-size:1.35rem}
p{margin:0;color:#475569}
@media (prefers-color-scheme:dark){body{background:#0f172a;color:#e2e8f0}main{background:#1e293b;box-shadow:none}.status{color:#60a5fa}p{color:#94a3b8}}
</style>
</head>
<body>
<main>
<p class="status">${status}</p>
<h1>${reason}</h1>
<p>${text}</p>
</main>
</body>
</html>
`
}

/** `<h1>418 I'm a Teapot</h1>`, for statuses without a page. */
function barePage(status: number): string {
  return `<h1>${status} ${STATUS_CODES[status] ?? 'Error'}</h1>\n`
}

/** A service's pages for one route table: its own templates, else the built-in ones, else the bare one. */
export class ErrorPages {
  readonly #templates: Readonly<Record<string, string>>
  readonly #stopMessage: string
  readonly #rendered = new Map<number, Buffer>()

  /** `templates`: status → page (see message-template.ts); `stopMessage`: the 503 page's text. */
  constructor(templates: Readonly<Record<string, string>>, stopMessage: string) {
    this.#templates = templates
    this.#stopMessage = stopMessage
  }

  page(status: number): Buffer {
    let body = this.#rendered.get(status)
    if (!body) {
      body = Buffer.from(renderPage(status, this.#templates[status], this.#stopMessage))
      this.#rendered.set(status, body)
    }
    return body
  }
}

/**
 * The page for `status`. `{{ .Message }}` is the stop message on a 503 page (the default text
 * when there is none), and empty on the others.
 */
export function renderPage(status: number, custom: string | undefined, stopMessage: string): string {
  const message = status === 503 ? stopMessage || DEFAULT_STOP_MESSAGE : ''
  if (custom !== undefined) return renderMessageTemplate(custom, message)
  const builtIn = BUILT_IN[status]
  return builtIn ? renderMessageTemplate(builtInTemplate(status, builtIn), message) : barePage(status)
}

/** The pages of services without their own pages or stop message, and of answers before any service is chosen. */
export const BUILT_IN_PAGES = new ErrorPages({}, '')

/** Answers with the page for `status` unless the response has already started (then it is cut). */
export function sendErrorPage(res: ServerResponse, status: number, pages: ErrorPages = BUILT_IN_PAGES): void {
  if (res.headersSent || res.writableEnded) {
    res.destroy()
    return
  }
  const body = pages.page(status)
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length })
  res.end(body)
}
