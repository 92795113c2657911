/**
 * Brings this node up to date with the shared state: applies, through the registry, every change
 * made through another node that it has not applied yet, and reports back how each went. Told of
 * the change that follows what it has, it reads that one record; otherwise it reads them all.
 */
import { oneLine } from '../../errors'
import { log } from '../../lib/logger'
import type { ServiceSpec } from '../../options'
import type { SharedHead, SharedRecord, SharedState } from '../state/shared-state'
import type { FleetNodes } from './fleet-nodes'
import type { AppliedChange } from './peers'

/** What the fleet needs from the registry. */
export interface FleetMember {
  /** The revision of the service's last change this node has, 0 if none. */
  revisionOf(service: string): number
  /** Applies a change made through another node; undefined if this node already has a newer one. */
  applyShared(service: string, revision: number, spec: ServiceSpec | undefined): Promise<AppliedChange | undefined>
  /** Redis lost its data: revisions start again from 1. */
  forgetRevisions(): void
  services(): ServiceSpec[]
}

/** What a change notification says: its revision and the service it changed. */
export interface ChangeHint {
  revision: number
  service: string
}

export class Reconciler {
  readonly #shared: SharedState
  readonly #nodes: FleetNodes
  readonly #member: FleetMember
  /**
   * The shared state this node has caught up with. Its epoch is that of the revisions the
   * registry holds: null when it holds none (started from the file while Redis was down).
   */
  #head: SharedHead
  #reconciling: Promise<void> | undefined
  #again = false
  /** Per service: the newest revision being applied, and its promise. */
  readonly #applying = new Map<string, { revision: number; done: Promise<void> }>()

  /** The registry holds what the store read at start: changes since then are caught up with. */
  constructor(shared: SharedState, nodes: FleetNodes, member: FleetMember) {
    this.#shared = shared
    this.#nodes = nodes
    this.#member = member
    this.#head = shared.lastRead
    nodes.startedWith = this.#head.revision
  }

  /** The revision of the shared state this node has read. */
  get revision(): number {
    return this.#head.revision
  }

  /** Whether Redis has changes this node has not read, or is empty and needs the state written back. */
  isBehind(head: SharedHead): boolean {
    return head.epoch === null || head.epoch !== this.#head.epoch || head.revision !== this.#head.revision
  }

  async reconcileIfBehind(): Promise<void> {
    if (this.isBehind(await this.#shared.head())) await this.reconcile()
  }

  /** Resolves once the service's changes made elsewhere, as far as Redis has them, are applied here. */
  async catchUp(service: string): Promise<void> {
    await this.reconcileIfBehind()
    await this.#applying.get(service)?.done
  }

  /**
   * Runs one reconcile at a time; calls meanwhile run one more afterwards, reading everything.
   * Told of the change that follows the revision this node has, it reads that service only.
   */
  reconcile(change?: ChangeHint): Promise<void> {
    if (this.#reconciling) {
      this.#again = true
      return this.#reconciling
    }
    this.#reconciling = (async () => {
      try {
        if (change) await this.#reconcileChange(change)
        else this.#again = true
        while (this.#again) {
          this.#again = false
          await this.#reconcileAll()
        }
      } finally {
        this.#reconciling = undefined
      }
    })()
    return this.#reconciling
  }

  // Private

  /** The next change after what this node has: one record to read. Anything else: read all. */
  async #reconcileChange({ revision, service }: ChangeHint): Promise<void> {
    if (revision <= this.#head.revision) return
    const { epoch, record } = revision === this.#head.revision + 1 ? await this.#shared.readOne(service) : { epoch: null, record: undefined }
    if (epoch === null || epoch !== this.#head.epoch || !record) {
      this.#again = true
      return
    }
    if (record.revision > this.#newest(service)) this.#apply(service, record)
    this.#head = { epoch, revision }
  }

  async #reconcileAll(): Promise<void> {
    const member = this.#member
    const { head, records, unreadable } = await this.#shared.read()
    if (head.epoch === null) {
      if (await this.#shared.seed(member.services(), this.#nodes.self)) {
        log('warn', 'redis was empty: wrote back the state this node serves', { services: member.services().length })
      }
      this.#again = true
      return
    }
    if (this.#head.epoch !== null && head.epoch !== this.#head.epoch) {
      // Revisions counted again from 1: what this node has applied says nothing about them.
      log('warn', 'redis state was written anew: reapplying it', { epoch: head.epoch })
      member.forgetRevisions()
      this.#applying.clear()
      this.#nodes.startedWith = 0
    }
    for (const [service, record] of records) {
      if (record.revision > this.#newest(service)) this.#apply(service, record)
    }
    // A service this node has from Redis, whose record is gone: its tombstone was pruned while
    // this node was away. (One deployed here but not committed yet has no revision so far; one
    // whose record is unreadable is kept as it is, see shared-state.ts.)
    for (const { name } of member.services()) {
      const revision = this.#newest(name)
      if (!records.has(name) && !unreadable.has(name) && revision > 0 && revision < head.revision) {
        this.#apply(name, { revision: head.revision, origin: 'the fleet (pruned removal)', spec: undefined })
      }
    }
    this.#head = head
  }

  /** The newest revision of the service this node has or is applying. */
  #newest(service: string): number {
    return Math.max(this.#member.revisionOf(service), this.#applying.get(service)?.revision ?? 0)
  }

  #apply(service: string, record: SharedRecord): void {
    const previous = this.#applying.get(service)?.done ?? Promise.resolve()
    const done = previous.then(async () => {
      let applied: AppliedChange | undefined
      try {
        applied = await this.#member.applyShared(service, record.revision, record.spec)
        if (!applied) return
        log(applied.warning ? 'warn' : 'info', 'applied change from another node', {
          service, revision: record.revision, origin: record.origin, result: applied.summary,
        })
      } catch (err) {
        log('error', 'could not apply change from another node', { service, revision: record.revision, error: oneLine(err) })
        applied = { summary: `could not apply the change: ${oneLine(err)}`, warning: true }
      }
      // The node that made the change is waiting for this report.
      await this.#nodes.reportApplied(service, { ...applied, revision: record.revision })
        .catch((err) => log('warn', 'cannot report to the fleet', { service, error: oneLine(err) }))
    })
    this.#applying.set(service, { revision: record.revision, done })
  }
}
