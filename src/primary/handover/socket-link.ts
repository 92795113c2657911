/**
 * A primary whose control socket is not `<state-dir>/mproxy.sock` (`kamal-proxy run` listens
 * where Kamal looks) puts a symbolic link there, so that every command given the state dir
 * finds it (connecting through a link reaches the socket it points to), and a later `mproxy run`
 * on that state dir takes over from it.
 */
import fs from 'node:fs/promises'
import { oneLine } from '../../errors'
import { log } from '../../lib/logger'

/** Points `linkPath` at `socketPath`, atomically (a link made aside, renamed over the path). */
export async function linkSocket(linkPath: string, socketPath: string): Promise<void> {
  if (linkPath === socketPath) return
  const aside = `${linkPath}.${process.pid}.link`
  try {
    await fs.rm(aside, { force: true })
    await fs.symlink(socketPath, aside)
    await fs.rename(aside, linkPath)
  } catch (err) {
    await fs.rm(aside, { force: true }).catch(() => {})
    log('warn', 'could not link the control socket into the state dir: commands must be given the socket', { link: linkPath, socket: socketPath, error: oneLine(err) })
  }
}

/** Removes the link, unless it points elsewhere now (a successor's socket, or a link of its own). */
export async function unlinkSocket(linkPath: string, socketPath: string): Promise<void> {
  if (linkPath === socketPath) return
  const target = await fs.readlink(linkPath).catch(() => undefined)
  if (target === socketPath) await fs.rm(linkPath, { force: true })
}
