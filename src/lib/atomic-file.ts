import fs from 'node:fs/promises'
import path from 'node:path'

/**
 * Writes a file so that a crash leaves the old or the new content, never a mix: a temporary
 * file, fsynced, renamed over the target, then the directory fsynced.
 */
export async function writeFileAtomic(file: string, content: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`
  const handle = await fs.open(tmp, 'w', mode)
  try {
    await handle.writeFile(content)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await fs.rename(tmp, file)
  const dir = await fs.open(path.dirname(file), 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
