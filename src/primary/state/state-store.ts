/**
 * Persisted state: an explicit, versioned snapshot behind a store interface, so the registry
 * does not know whether it lives in a file or elsewhere.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { StateFileError, oneLine } from '../../errors'
import { writeFileAtomic } from '../../lib/atomic-file'
import { log } from '../../lib/logger'
import { type ServiceSpec } from '../../options'
import { normalizeServiceSpec } from '../../service-spec'

export const STATE_VERSION = 1
export const STATE_FILE_NAME = 'state.json'

export interface Snapshot {
  version: typeof STATE_VERSION
  services: ServiceSpec[]
  /** With shared state: the revision of each service's last change, removed ones included. */
  revisions?: Record<string, number>
}

export interface StateStore {
  /** The saved snapshot, or undefined on a fresh start. Throws when saved state cannot be read. */
  load(): Promise<Snapshot | undefined>
  /**
   * Saves the whole state after the service `changed` was deployed or removed through this node,
   * and returns the revision of that change (always 0 for a file). Without `changed`, the
   * snapshot only mirrors changes made through other nodes: shared state is not written.
   */
  save(snapshot: Snapshot, changed?: string): Promise<number>
  describe(): string
  /** Throws when a save would fail now (its backend unreachable), so a deploy fails before it switches. */
  check?(): Promise<void>
  close?(): void
}

/** Validates a snapshot from disk (or any other untrusted place) and normalizes its services. */
export function parseSnapshot(text: string, source: string): Snapshot {
  let data: { version?: unknown; services?: unknown }
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new StateFileError(`cannot parse state file ${source}: ${oneLine(err)}; fix it or move it away (mproxy never overwrites it)`)
  }
  if (typeof data !== 'object' || data === null || !Array.isArray(data.services)) {
    throw new StateFileError(`state file ${source} has no "services" list; fix it or move it away (mproxy never overwrites it)`)
  }
  if (data.version !== STATE_VERSION) {
    throw new StateFileError(`state file ${source} has version ${JSON.stringify(data.version)}; this mproxy reads version ${STATE_VERSION}`)
  }
  const services = data.services.map((service, index) => {
    try {
      return normalizeServiceSpec(service as ServiceSpec)
    } catch (err) {
      throw new StateFileError(`state file ${source}: service #${index + 1} is invalid: ${oneLine(err)}`)
    }
  })
  checkUnique(services, source)
  return { version: STATE_VERSION, services }
}

/** Two services of one name, or of one host and path prefix (or two default services), cannot both be served. */
function checkUnique(services: readonly ServiceSpec[], source: string): void {
  const names = new Set<string>()
  const bindings = new Map<string, string>()
  const fix = 'fix it or move it away (mproxy never overwrites it)'
  for (const service of services) {
    if (names.has(service.name)) throw new StateFileError(`state file ${source} has two services named ${service.name}; ${fix}`)
    names.add(service.name)
    for (const host of service.hosts.length === 0 ? [''] : service.hosts) {
      for (const prefix of service.pathPrefixes) {
        const binding = `${host}${prefix === '/' ? '' : prefix}`
        const owner = bindings.get(binding)
        const what = binding === '' ? 'are both the default service (no host)' : `both have the host ${binding}`
        if (owner !== undefined) throw new StateFileError(`state file ${source}: services ${owner} and ${service.name} ${what}; ${fix}`)
        bindings.set(binding, service.name)
      }
    }
  }
}

/**
 * The state file `<state-dir>/state.json`, written atomically (see writeFileAtomic).
 */
export class FileStateStore implements StateStore {
  readonly #file: string
  #queue: Promise<void> = Promise.resolve()

  constructor(stateDir: string) {
    this.#file = path.join(stateDir, STATE_FILE_NAME)
  }

  describe(): string {
    return this.#file
  }

  async load(): Promise<Snapshot | undefined> {
    let text: string
    try {
      text = await fs.readFile(this.#file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        log('info', 'no saved state, starting fresh', { file: this.#file })
        return undefined
      }
      throw new StateFileError(`cannot read state file ${this.#file}: ${oneLine(err)}`)
    }
    return parseSnapshot(text, this.#file)
  }

  /** Saves are queued, so two deploys finishing together write in order. */
  async save(snapshot: Snapshot): Promise<number> {
    const write = this.#queue.then(() => this.#write(snapshot))
    this.#queue = write.catch(() => {})
    await write
    return 0
  }

  // Private

  #write(snapshot: Snapshot): Promise<void> {
    return writeFileAtomic(this.#file, JSON.stringify(snapshot, null, 2) + '\n')
  }
}
