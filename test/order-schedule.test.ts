import type { StoredCertificate } from '../src/primary/tls/certificate-files'
import { OrderSchedule } from '../src/primary/tls/order-schedule'

const HOST = 'app.test'
const OTHER = 'other.test'
const BASE_MS = 60_000
const CHECK_INTERVAL_MS = 3_600_000
const DAY_MS = 86_400_000
const NOW = Date.parse('2026-11-27T09:00:00Z')

/** A 90-day certificate issued `ageDays` before NOW. */
function certificate(host: string, ageDays: number): StoredCertificate {
  const notBefore = new Date(NOW - ageDays * DAY_MS)
  return { host, cert: `pem of ${host}`, key: 'key', notBefore, notAfter: new Date(notBefore.getTime() + 90 * DAY_MS) }
}

function schedule(...hosts: string[]): OrderSchedule {
  const created = new OrderSchedule({ retryBaseMs: BASE_MS, checkIntervalMs: CHECK_INTERVAL_MS })
  created.want(hosts)
  return created
}

describe('OrderSchedule', () => {
  describe('due', () => {
    it.each<[string, (s: OrderSchedule) => void, string[]]>([
      ['a host never ordered', () => {}, [HOST]],
      ['a host whose certificate is halfway through its lifetime', (s) => s.recordCertificate(certificate(HOST, 45)), []],
      ['a host short of the earliest renewal, with the most jitter (61%)', (s) => s.recordCertificate(certificate(HOST, 55)), []],
      ['a host at two thirds of its certificate lifetime (renewal)', (s) => s.recordCertificate(certificate(HOST, 60)), [HOST]],
      ['a host whose certificate expired', (s) => s.recordCertificate(certificate(HOST, 91)), [HOST]],
      ['a host within the backoff of its failure', (s) => s.recordFailure(HOST, 'refused', NOW - BASE_MS / 2), []],
      ['a host past the backoff of its failure', (s) => s.recordFailure(HOST, 'refused', NOW - BASE_MS), [HOST]],
      ['a host another node orders, before the recheck', (s) => s.recheck(HOST, NOW + 1), []],
      ['a host another node ordered, at the recheck', (s) => s.recheck(HOST, NOW), [HOST]],
      ['a host being ordered', (s) => s.takeDue(NOW - 1), []],
      ['a host whose order failed, past the backoff', (s) => {
        s.takeDue(NOW - BASE_MS)
        s.recordFailure(HOST, 'refused', NOW - BASE_MS)
        s.finishOrder(HOST, NOW - BASE_MS)
      }, [HOST]],
      ['a host whose order ended with nothing to go by, before the routine check', (s) => (s.takeDue(NOW - 1), s.finishOrder(HOST, NOW - 1)), []],
      ['a host whose order ended with nothing to go by, at the routine check', (s) => (s.takeDue(NOW - CHECK_INTERVAL_MS), s.finishOrder(HOST, NOW - 1)), [HOST]],
      ['a host no longer wanted', (s) => s.want([OTHER]), [OTHER]],
    ])('%s', (_case, arrange, expected) => {
      const s = schedule(HOST)
      arrange(s)
      expect(s.due(NOW)).toEqual(expected)
    })
  })

  describe('recordFailure', () => {
    it.each([
      ['the base after the first failure', 1, '', BASE_MS],
      ['twice the base after the second', 2, '', 2 * BASE_MS],
      ['doubling again after each one', 5, '', 16 * BASE_MS],
      ['at most a day', 12, '', DAY_MS],
      ["the CA's rate-limit retry-after when later than the backoff", 1, 'too many certificates (5) already issued, retry after 2026-11-27 12:00:00 UTC: see https://letsencrypt.org/docs/rate-limits/', 3 * 3_600_000],
      ['the backoff when the retry-after is sooner', 6, 'retry after 2026-11-27 09:05:00 UTC', 32 * BASE_MS],
    ])('waits %s', (_case, failures, error, expectedDelayMs) => {
      const s = schedule(HOST)
      for (let i = 1; i < failures; i++) s.recordFailure(HOST, 'refused', NOW)
      const failure = s.recordFailure(HOST, error, NOW)
      expect(failure).toEqual({ count: failures, error, nextAttemptAt: NOW + expectedDelayMs })
      expect(s.failure(HOST)).toEqual(failure)
      expect(s.due(NOW + expectedDelayMs - 1)).toEqual([])
      expect(s.due(NOW + expectedDelayMs)).toEqual([HOST])
    })

    it('is cleared by a certificate', () => {
      const s = schedule(HOST)
      s.recordFailure(HOST, 'refused', NOW)
      s.recordCertificate(certificate(HOST, 0))
      expect(s.failure(HOST)).toBeUndefined()
      expect(s.due(NOW + BASE_MS)).toEqual([])
      s.takeDue(NOW)
      expect(s.nextCheckAt(NOW)).toBe(NOW + CHECK_INTERVAL_MS)
    })
  })

  describe('adoptFailure', () => {
    it.each([
      ['takes a failure counting more in a row', 1, 2, true],
      ['keeps its own when the other counts as many', 2, 2, false],
      ['keeps its own when the other counts fewer', 3, 1, false],
    ])('%s', (_case, local, shared, taken) => {
      const s = schedule(HOST)
      for (let i = 0; i < local; i++) s.recordFailure(HOST, 'local', NOW)
      const other = { count: shared, error: 'shared', nextAttemptAt: NOW + DAY_MS }
      expect(s.adoptFailure(HOST, other)).toBe(taken)
      expect(s.failure(HOST)?.error).toBe(taken ? 'shared' : 'local')
    })
  })

  describe('takeDue', () => {
    it('marks the due hosts as being ordered, until their order is over', () => {
      const s = schedule(HOST, OTHER)
      s.recordCertificate(certificate(OTHER, 10))
      expect(s.takeDue(NOW)).toEqual([HOST])
      expect(s.isOrdering(HOST)).toBe(true)
      expect(s.takeDue(NOW)).toEqual([])
      s.recordFailure(HOST, 'refused', NOW)
      s.finishOrder(HOST, NOW)
      expect(s.isOrdering(HOST)).toBe(false)
      expect(s.takeDue(NOW + BASE_MS)).toEqual([HOST])
    })

    it('counts as the routine check once that is due, and not before', () => {
      const s = schedule()
      s.takeDue(NOW)
      expect(s.nextCheckAt(NOW)).toBe(NOW + CHECK_INTERVAL_MS)
      s.takeDue(NOW + 1_000)
      expect(s.nextCheckAt(NOW + 1_000)).toBe(NOW + CHECK_INTERVAL_MS)
      s.takeDue(NOW + CHECK_INTERVAL_MS)
      expect(s.nextCheckAt(NOW + CHECK_INTERVAL_MS)).toBe(NOW + 2 * CHECK_INTERVAL_MS)
    })
  })

  describe('nextCheckAt', () => {
    // Each case starts with HOST's first order running, begun by the first check at NOW.
    it.each<[string, (s: OrderSchedule) => void, number]>([
      ['the routine check when nothing else is pending', (s) => (s.recordCertificate(certificate(HOST, 0)), s.finishOrder(HOST, NOW)), NOW + CHECK_INTERVAL_MS],
      ['the end of a backoff before it', (s) => (s.recordFailure(HOST, 'refused', NOW), s.finishOrder(HOST, NOW)), NOW + BASE_MS],
      ['a recheck before the end of a backoff', (s) => {
        s.want([HOST, OTHER])
        s.recordFailure(HOST, 'refused', NOW)
        s.finishOrder(HOST, NOW)
        s.recheck(OTHER, NOW + 5_000)
      }, NOW + 5_000],
      ['the routine check before a rate-limit retry-after', (s) => (s.recordFailure(HOST, 'retry after 2026-11-28 09:00:00 UTC', NOW), s.finishOrder(HOST, NOW)), NOW + CHECK_INTERVAL_MS],
      ['now, for a host due now', (s) => (s.recordCertificate(certificate(HOST, 0)), s.finishOrder(HOST, NOW), s.want([HOST, OTHER])), NOW],
      ['not the backoff of a host still being ordered', (s) => s.recordFailure(HOST, 'refused', NOW), NOW + CHECK_INTERVAL_MS],
      ['not the backoff of a host no longer wanted', (s) => (s.recordFailure(HOST, 'refused', NOW), s.finishOrder(HOST, NOW), s.want([])), NOW + CHECK_INTERVAL_MS],
      ['not the recheck of a host no longer wanted', (s) => (s.recheck(HOST, NOW + 5_000), s.finishOrder(HOST, NOW), s.want([])), NOW + CHECK_INTERVAL_MS],
    ])('is %s', (_case, arrange, expected) => {
      const s = schedule(HOST)
      expect(s.takeDue(NOW)).toEqual([HOST])
      arrange(s)
      expect(s.nextCheckAt(NOW)).toBe(expected)
    })
  })

  describe('want', () => {
    it('drops the hosts left out, and keeps their backoff for when they come back', () => {
      const s = schedule(HOST, OTHER)
      s.recordFailure(HOST, 'refused', NOW)
      s.want([OTHER])
      expect(s.due(NOW + BASE_MS)).toEqual([OTHER])
      s.want([HOST, OTHER])
      expect(s.due(NOW)).toEqual([OTHER])
      expect(s.due(NOW + BASE_MS)).toEqual([HOST, OTHER])
      expect(s.failure(HOST)?.count).toBe(1)
    })
  })
})
