/**
 * A service's custom error pages (`deploy --error-pages DIR`): `<status>.html` templates read by
 * the primary at deploy and at start, checked whole, and sent to the workers in route tables.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { InvalidOptionError, oneLine } from '../../errors'
import { checkMessageTemplate } from '../../lib/message-template'

/** Status code (as text) → template; only the statuses the directory has a page for. */
export type ErrorPageTemplates = Readonly<Record<string, string>>

export const NO_ERROR_PAGES: ErrorPageTemplates = Object.freeze({})

/** A page is sent to every worker in every route table: one larger than this is refused. */
export const MAX_ERROR_PAGE_BYTES = 64 * 1024

const STATUS_PAGE = /^([45]\d\d)\.html$/

/**
 * The pages of `dir`, or a one-line error: the directory missing or unreadable, no
 * `<status>.html` file (400-599) in it, a page too large, unreadable or using a template
 * action other than `{{ .Message }}`. Other files are ignored.
 */
export async function loadErrorPages(dir: string | undefined): Promise<ErrorPageTemplates> {
  if (dir === undefined) return NO_ERROR_PAGES
  const fail = (why: string): never => {
    throw new InvalidOptionError(`cannot load error pages from ${dir}: ${why}`)
  }
  let names: string[] = []
  try {
    names = (await fs.readdir(dir, { withFileTypes: true })).filter((entry) => !entry.isDirectory()).map((entry) => entry.name)
  } catch (err) {
    fail(describeFsError(err))
  }
  const statuses = names.map((name) => STATUS_PAGE.exec(name)?.[1]).filter((status) => status !== undefined).sort()
  if (statuses.length === 0) fail('no <status>.html file (such as 503.html) in it')
  const pages: Record<string, string> = {}
  for (const status of statuses) {
    const file = path.join(dir, `${status}.html`)
    let content = ''
    try {
      const { size } = await fs.stat(file)
      if (size > MAX_ERROR_PAGE_BYTES) fail(`${status}.html is ${size} bytes, over the limit of ${MAX_ERROR_PAGE_BYTES}`)
      content = await fs.readFile(file, 'utf8')
    } catch (err) {
      if (err instanceof InvalidOptionError) throw err
      fail(`${status}.html: ${describeFsError(err)}`)
    }
    checkMessageTemplate(content, `cannot load error pages from ${dir}: ${status}.html`)
    pages[status] = content
  }
  return pages
}

/**
 * The pages, or the built-in ones and why not: a restart, or a node of the fleet applying
 * another's deploy, serves with the built-in pages rather than not at all.
 */
export async function loadErrorPagesOrBuiltIn(dir: string | undefined): Promise<{ pages: ErrorPageTemplates; error?: string }> {
  try {
    return { pages: await loadErrorPages(dir) }
  } catch (err) {
    return { pages: NO_ERROR_PAGES, error: oneLine(err) }
  }
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such directory'
  if (code === 'ENOTDIR') return 'not a directory'
  if (code === 'EACCES') return 'permission denied'
  return oneLine(err)
}
