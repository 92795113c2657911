/**
 * Error-page templates: HTML with one placeholder, `{{ .Message }}` (or `{{.Message}}`), the
 * text of a stopped service's maintenance page, HTML-escaped. No other template language: a
 * page with any other `{{ ... }}` action is refused when it is loaded, rather than shown with
 * the braces in it.
 */
import { InvalidOptionError } from '../errors'

const ACTION = /\{\{([\s\S]*?)\}\}/g
const MESSAGE = /\{\{\s*\.Message\s*\}\}/g
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text made safe to place in HTML, in an element or in a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char])
}

/** The page with every placeholder replaced by `message`, escaped. */
export function renderMessageTemplate(template: string, message: string): string {
  if (!template.includes('{{')) return template
  const escaped = escapeHtml(message)
  return template.replace(MESSAGE, () => escaped)
}

/** Throws a one-line error naming `name` when the template has an action other than the placeholder. */
export function checkMessageTemplate(template: string, name: string): void {
  for (const [action, inside] of template.matchAll(ACTION)) {
    if (inside.trim() !== '.Message') {
      throw new InvalidOptionError(`${name}: unsupported template action ${action}; only {{ .Message }} is supported`)
    }
  }
}
