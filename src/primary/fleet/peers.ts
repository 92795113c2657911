/**
 * The other proxies that share this one's state (a fleet on one Redis), as the registry sees
 * them. A proxy on its own has none: `NO_PEERS`.
 */
export type Progress = (message: string) => void

export interface Peers {
  /**
   * Runs `work` while no other node changes the service: deploys of one service through two
   * nodes take turns instead of overwriting each other. Waits at most `maxWaitMs` for its turn.
   */
  exclusive<T>(service: string, maxWaitMs: number, progress: Progress, work: () => Promise<T>): Promise<T>
  /** Applies what other nodes changed in the service, so a change made here starts from it. */
  catchUp(service: string): Promise<void>
  /** Resolves once every other live node has applied `revision` of the service and drained. */
  awaitApplied(service: string, revision: number, drainTimeoutMs: number, progress: Progress): Promise<void>
}

export const NO_PEERS: Peers = {
  exclusive: (_service, _maxWaitMs, _progress, work) => work(),
  catchUp: async () => {},
  awaitApplied: async () => {},
}

/** How a node applied a change made through another node, as reported back to that node. */
export interface AppliedChange {
  /** "switched and drained after 1.2s", or what went wrong. */
  summary: string
  /** The node serves the change but something needs the operator's eye. */
  warning: boolean
}

/** How long a node health-checks a target another node has already found healthy, before switching anyway. */
export const SHARED_HEALTH_WAIT_MS = 10_000
