/**
 * The move from kamal-proxy: on a first start (no mproxy state yet), a `kamal-proxy.state` in
 * the state dir is imported, and the certificates kamal-proxy cached are reused. Whatever
 * cannot be carried over is logged by name. Nothing is deleted: kamal-proxy's files stay as
 * they were, and a start with mproxy state never reads them again.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { oneLine } from '../errors'
import { log } from '../lib/logger'
import type { CertificateStore } from '../primary/tls/certificate-files'
import { STATE_VERSION, type Snapshot } from '../primary/state/state-store'
import { reuseKamalCertificates } from './certificate-import'
import { KAMAL_STATE_FILE } from './paths'
import { importKamalState } from './state-import'

/**
 * The services of `<stateDir>/kamal-proxy.state` as a snapshot to start from, or undefined when
 * there is no such file or it cannot be read (logged). The caller saves it.
 */
export async function importKamalProxy(stateDir: string, acmeDirectoryUrl: string, certificates: CertificateStore): Promise<Snapshot | undefined> {
  const file = path.join(stateDir, KAMAL_STATE_FILE)
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log('error', 'kamal-proxy state not imported: cannot read it', { file, error: oneLine(err) })
    return undefined
  }
  let imported: ReturnType<typeof importKamalState>
  try {
    imported = importKamalState(text, stateDir)
  } catch (err) {
    log('error', 'kamal-proxy state not imported', { file, error: oneLine(err) })
    return undefined
  }
  for (const { service, reason } of imported.skipped) log('warn', 'kamal-proxy service not imported', { service, reason })
  for (const { service, options } of imported.dropped) log('warn', 'kamal-proxy options not imported', { service, options })
  for (const spec of imported.services) {
    if (spec.state !== 'running') log('info', `kamal-proxy service imported ${spec.state}`, { service: spec.name, stopMessage: spec.stopMessage, maxPauseMs: spec.maxPauseMs })
  }
  // The cache path kamal-proxy saved is its container's: where that is not here, the data dir's.
  const sources = await Promise.all(imported.certificates.map(async (source) => ({
    ...source,
    cachePath: (await isDirectory(source.cachePath)) ? source.cachePath : path.join(stateDir, 'certs'),
  })))
  const reuse = await reuseKamalCertificates(sources, acmeDirectoryUrl, certificates).catch((err: unknown) => {
    log('error', 'kamal-proxy certificates not reused', { error: oneLine(err) })
    return undefined
  })
  for (const certificate of reuse?.reused ?? []) log('info', 'kamal-proxy certificate reused', { host: certificate.host, notAfter: certificate.notAfter.toISOString() })
  for (const { host, reason } of reuse?.missing ?? []) log('info', 'no kamal-proxy certificate to reuse: it will be ordered', { host, reason })
  log('info', 'kamal-proxy state imported', { file, services: imported.services.map((spec) => spec.name) })
  return { version: STATE_VERSION, services: imported.services }
}

async function isDirectory(dir: string): Promise<boolean> {
  return fs.stat(dir).then((stat) => stat.isDirectory(), () => false)
}
