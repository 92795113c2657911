import { InvalidOptionError } from '../src/errors'
import { checkMessageTemplate, escapeHtml, renderMessageTemplate } from '../src/lib/message-template'
import { DEFAULT_STOP_MESSAGE, ErrorPages, renderPage } from '../src/worker/error-pages'

describe('escapeHtml', () => {
  it.each([
    ['plain text', 'Back at 5', 'Back at 5'],
    ['markup', '<script>alert(1)</script>', '&lt;script&gt;alert(1)&lt;/script&gt;'],
    ['an ampersand, once', 'R&D &amp; more', 'R&amp;D &amp;amp; more'],
    ['both quotes (safe in attributes)', `"it's"`, '&quot;it&#39;s&quot;'],
    ['text outside ASCII, untouched', 'Fermé — à 14h', 'Fermé — à 14h'],
  ])('escapes %s', (_case, text, escaped) => {
    expect(escapeHtml(text)).toBe(escaped)
  })
})

describe('renderMessageTemplate', () => {
  it.each([
    ['the spaced placeholder', '<p>{{ .Message }}</p>', 'Back soon', '<p>Back soon</p>'],
    ['the compact placeholder', '<p>{{.Message}}</p>', 'Back soon', '<p>Back soon</p>'],
    ['every occurrence', '<title>{{ .Message }}</title><p>{{.Message}}</p>', 'x', '<title>x</title><p>x</p>'],
    ['an escaped message', '<p>{{ .Message }}</p>', '<b>&</b>', '<p>&lt;b&gt;&amp;&lt;/b&gt;</p>'],
    ['a message with $ patterns, literally', '<p>{{ .Message }}</p>', "$& $' $1", "<p>$&amp; $&#39; $1</p>"],
    ['an empty message', '<p>{{ .Message }}</p>', '', '<p></p>'],
    ['a page without placeholder', '<p>Down</p>', 'ignored', '<p>Down</p>'],
  ])('renders %s', (_case, template, message, page) => {
    expect(renderMessageTemplate(template, message)).toBe(page)
  })
})

describe('checkMessageTemplate', () => {
  it.each([
    ['no action', '<p>Down</p>'],
    ['the placeholder', '<p>{{ .Message }} {{.Message}} {{  .Message  }}</p>'],
    ['single braces (CSS, scripts)', '<style>p{color:red}</style><script>if (a) { b() }</script>'],
  ])('accepts %s', (_case, template) => {
    expect(() => checkMessageTemplate(template, '503.html')).not.toThrow()
  })

  it.each([
    ['a conditional', '{{ if .Message }}<p>{{ .Message }}</p>{{ end }}', '503.html: unsupported template action {{ if .Message }}; only {{ .Message }} is supported'],
    ['another field', '<p>{{ .Status }}</p>', '503.html: unsupported template action {{ .Status }}; only {{ .Message }} is supported'],
    ['an action over two lines', '<p>{{\n.Other }}</p>', '503.html: unsupported template action {{\n.Other }}; only {{ .Message }} is supported'],
  ])('refuses %s with one line', (_case, template, message) => {
    expect(() => checkMessageTemplate(template, '503.html')).toThrow(InvalidOptionError)
    expect(() => checkMessageTemplate(template, '503.html')).toThrow(message)
  })
})

describe('renderPage', () => {
  it.each([
    [404, '404 — Not Found'],
    [413, '413 — Content Too Large'],
    [502, '502 — Bad Gateway'],
    [503, '503 — Service Temporarily Unavailable'],
    [504, '504 — Gateway Timeout'],
  ])('has a built-in page for %i, self-contained and not indexed', (status, title) => {
    const page = renderPage(status, undefined, '')
    expect(page).toMatch(/^<!DOCTYPE html>/)
    expect(page).toContain(`<title>${title}</title>`)
    expect(page).toContain('<meta name="robots" content="noindex, nofollow">')
    expect(page).toContain('<style>')
    expect(page).not.toMatch(/src=|href=|url\(|\{\{/)
  })

  it.each([
    ['the default text without a stop message', 503, undefined, '', DEFAULT_STOP_MESSAGE],
    ['the stop message, escaped', 503, undefined, 'Back <soon>', '<p>Back &lt;soon&gt;</p>'],
    ['a bare heading for a status without a page', 418, undefined, '', "<h1>418 I'm a Teapot</h1>\n"],
    ['a custom 503 page with the message', 503, '<p>{{ .Message }}</p>', 'Lunch', '<p>Lunch</p>'],
    ['a custom 503 page with the default text', 503, '<p>{{ .Message }}</p>', '', `<p>${DEFAULT_STOP_MESSAGE}</p>`],
    ['a custom 502 page, whose placeholder is empty', 502, '<p>[{{ .Message }}]</p>', 'Lunch', '<p>[]</p>'],
  ])('renders %s', (_case, status, custom, stopMessage, expected) => {
    expect(renderPage(status, custom, stopMessage)).toContain(expected)
  })

  it('renders each page of a service once, then reuses it', () => {
    const pages = new ErrorPages({ 503: '<p>{{ .Message }}</p>' }, 'Lunch')
    expect(pages.page(503).toString()).toBe('<p>Lunch</p>')
    expect(pages.page(503)).toBe(pages.page(503))
    expect(pages.page(502).toString()).toContain('<title>502 — Bad Gateway</title>')
  })
})
