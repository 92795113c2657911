import fs from 'node:fs'
import path from 'node:path'
import { InvalidOptionError } from '../src/errors'
import { MAX_ERROR_PAGE_BYTES, loadErrorPages, loadErrorPagesOrBuiltIn } from '../src/primary/deploys/error-page-files'
import { makeStateDir } from './helpers'

/** A directory holding `files` (name → content). */
function pagesDir(files: Record<string, string>): string {
  const dir = makeStateDir()
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content)
  return dir
}

describe('loadErrorPages', () => {
  it('reads the <status>.html pages of a directory and ignores the other files', async () => {
    const dir = pagesDir({ '503.html': '<p>{{ .Message }}</p>', '404.html': '<p>gone</p>', 'style.css': 'p{}', 'index.html': '<p>home</p>', '200.html': 'ok' })
    fs.mkdirSync(path.join(dir, '502.html'))
    expect(await loadErrorPages(dir)).toEqual({ 404: '<p>gone</p>', 503: '<p>{{ .Message }}</p>' })
  })

  it('has nothing to read without a directory', async () => {
    expect(await loadErrorPages(undefined)).toEqual({})
  })

  it.each<[string, () => string, RegExp]>([
    ['a missing directory', () => path.join(makeStateDir(), 'missing'), /: no such directory$/],
    ['a file instead of a directory', () => path.join(pagesDir({ 'x.txt': '' }), 'x.txt'), /: not a directory$/],
    ['a directory without pages', () => pagesDir({ 'index.html': '<p>home</p>' }), /: no <status>\.html file \(such as 503\.html\) in it$/],
    ['a page over the size limit', () => pagesDir({ '503.html': 'x'.repeat(MAX_ERROR_PAGE_BYTES + 1) }), new RegExp(`: 503\\.html is ${MAX_ERROR_PAGE_BYTES + 1} bytes, over the limit of ${MAX_ERROR_PAGE_BYTES}$`)],
    ['a page with another template action', () => pagesDir({ '503.html': '{{ if .Message }}x{{ end }}' }), /: 503\.html: unsupported template action \{\{ if \.Message \}\}/],
  ])('refuses %s with one line naming the directory', async (_case, makeDir, message) => {
    const dir = makeDir()
    const loading = loadErrorPages(dir)
    await expect(loading).rejects.toThrow(InvalidOptionError)
    await expect(loadErrorPages(dir)).rejects.toThrow(`cannot load error pages from ${dir}: `)
    await expect(loadErrorPages(dir)).rejects.toThrow(message)
  })

  it('falls back to the built-in pages, saying why, where a refusal is not an option', async () => {
    const dir = path.join(makeStateDir(), 'missing')
    expect(await loadErrorPagesOrBuiltIn(dir)).toEqual({ pages: {}, error: `cannot load error pages from ${dir}: no such directory` })
  })
})
