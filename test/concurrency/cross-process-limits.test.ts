/**
 * Rate limits and credits exact across processes: two worker processes (worker.ts), each with its own
 * client and two KeyManagers on one Redis namespace, PostgreSQL table, MariaDB table or SQLite file
 * (WAL), verify the same key (or two keys of one pool) from the same instant. This process only creates
 * the keys and checks the totals, so all four managers racing are in other processes. The in-process
 * version (two KeyManagers, one process) is in the conformance suite (src/testing/cases/limits.ts).
 *
 * Every manager, here and in both workers, takes one ManagerConfig: the policies below and a running
 * clock that reads T0 (noon UTC) when this file starts and then follows the wall clock. A running
 * clock, not the frozen one of the other concurrency suites, so each process stamps its requests with
 * its own instants and the stores see requests out of order, as they would in production. It also
 * means a token bucket refills during the test; see HOURLY_TOKEN_MS for why that stays below one token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { KeyManager, LimitsOptions } from '../../src/index.js'
import { BACKENDS, type Backend } from '../support/backends.js'
import { expectOnlyTypedErrors } from './checks.js'
import { closeAll, fulfilled, managersOn, times, type ManagerConfig, type Op, type Outcome } from './harness.js'
import { openPlace, type Place } from './places.js'
import { startWorker, type WorkerHandle } from './worker-handle.js'

/** Both workers start this long after both are armed: enough for the 'go' lines to arrive. */
const START_DELAY_MS = 50
/** Attempts at a scenario until the two workers' halves overlapped in time. */
const ATTEMPTS = 3
const LIMIT = 50

const POLICIES: LimitsOptions['policies'] = {
  // Token bucket, 50 an hour: it refills one token every 72 s (HOURLY_TOKEN_MS). Each attempt uses a
  // fresh key, whose bucket is first touched by the race itself and last touched by its final verify,
  // well under a second later: refill within one key's life stays below one token, so exactly 50 pass.
  // A short window (50 a second) would refill mid-race and let a timing-dependent number through.
  hourly: { rate: [{ name: 'hourly', limit: LIMIT, window: '1h' }] },
  // Fixed window, 50 a day, aligned to midnight UTC. The clock starts at noon UTC (T0) and runs with
  // the wall clock, so the window cannot roll over unless this file runs for twelve hours.
  daily: { rate: [{ name: 'daily', limit: LIMIT, window: '1d', algorithm: 'fixed-window' }] },
  // One counter for all keys of an owner (within its tenant).
  pooled: { rate: [{ name: 'shared', limit: LIMIT, window: '1h', per: 'owner' }] },
}

/** How long the `hourly` bucket takes to refill one token, ms: the bound on a race's length. */
const HOURLY_TOKEN_MS = 3_600_000 / LIMIT

/** The one configuration of every manager, in this process and both workers. */
const CONFIG: ManagerConfig = { policies: POLICIES, runningFrom: Date.now() }

const CROSS_PROCESS = BACKENDS.filter((backend) => backend.name !== 'memory')
const GATES = new Map(await Promise.all(CROSS_PROCESS.map(async (backend) => [backend.name, await backend.gate()] as const)))

/** Every available backend's place, opened when the file starts, and two workers on all of them. */
const places = new Map<Backend['name'], Place>()
let workers: readonly WorkerHandle[] = []

beforeAll(async () => {
  const available = CROSS_PROCESS.filter((backend) => GATES.get(backend.name)!.available)
  const opened = await Promise.allSettled(available.map(async (backend) => places.set(backend.name, await openPlace(backend))))
  for (const result of opened) if (result.status === 'rejected') throw result.reason
  if (places.size === 0) return
  const locations = [...places.values()].map((place) => place.location)
  const started = await Promise.allSettled([startWorker(locations, CONFIG), startWorker(locations, CONFIG)])
  workers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
  for (const result of started) if (result.status === 'rejected') throw result.reason
}, 30_000)

afterAll(async () => {
  try {
    await Promise.all(workers.map((worker) => worker.quit()))
  } finally {
    for (const backend of CROSS_PROCESS) {
      await places.get(backend.name)?.cleanup()
      await backend.close()
    }
  }
}, 30_000)

/** `count` verifies of `token`, each of `cost` (default 1). */
function verifies(token: string, count: number, cost?: number): Op[] {
  return times(count, (): Op => ({ op: 'verify', token, ...(cost === undefined ? {} : { cost }) }))
}

/** The verifies of a race that passed and those that were refused. */
function tally(all: readonly Outcome[]) {
  const answered = fulfilled(all, 'verify')
  return { passed: answered.filter((outcome) => outcome.valid), refused: answered.filter((outcome) => !outcome.valid) }
}

/** `[from, from + step, …]`, `count` numbers. */
const series = (count: number, from: number, step: number) => times(count, (i) => from + i * step)
/** Ascending; a missing number (`undefined`) sorts first and shows as such in a failure. */
const ascending = (values: readonly (number | undefined)[]) => [...values].sort((a, b) => (a ?? -1) - (b ?? -1))

/**
 * How the workers' managers come to the race. Cold: the first verify of the key in each manager, so
 * every verify reads the key, then charges (consumeUsage). Warm: each manager verified the key once
 * before with `consume: false` (which charges nothing), so a store that offers consumeIfCurrent reads
 * and charges in one guarded step; a store without it takes the cold path again.
 */
const PATHS = [
  { warm: false, label: 'first verify in each manager (read, then charge)' },
  { warm: true, label: 'key seen before in each manager (one guarded read-and-charge where the store offers it)' },
] as const

for (const backend of CROSS_PROCESS) {
  describe.skipIf(!GATES.get(backend.name)!.available)(`limits across two processes: ${backend.name}`, () => {
    let place: Place
    let keys: KeyManager

    beforeAll(() => {
      place = places.get(backend.name)!
      keys = managersOn([place.store], 1, CONFIG)[0]!
    })

    afterAll(() => closeAll([keys]))

    /** Runs `ops` in one worker as a batch of its own (not a race); its outcomes. */
    async function batchOn(worker: WorkerHandle, ops: readonly Op[]): Promise<Outcome[]> {
      await worker.arm(place.location.backend, ops)
      return (await worker.go(Date.now())).outcomes
    }

    /** In each worker, one uncharged verify per manager (the worker round-robins its two) of each of its tokens. */
    async function warmUp(tokens: readonly [readonly string[], readonly string[]]): Promise<void> {
      const warmed = await Promise.all(workers.map((worker, i) => batchOn(worker, tokens[i]!.flatMap((token) => times(2, (): Op => ({ op: 'verify', token, consume: false }))))))
      expectOnlyTypedErrors(warmed.flat(), {})
      expect(warmed.flat().every((outcome) => outcome.ok && outcome.valid), 'an uncharged verify passes').toBe(true)
    }

    /**
     * Runs `first` in one worker and `second` in the other, both from the same instant (a shared
     * wall-clock start, see waitUntil). `overlapped` tells whether the halves really ran at the same
     * time; `span` is the time from the earlier start to the later finish, ms.
     */
    async function race(first: readonly Op[], second: readonly Op[]): Promise<{ all: Outcome[]; overlapped: boolean; span: number }> {
      await Promise.all([workers[0]!.arm(place.location.backend, first), workers[1]!.arm(place.location.backend, second)])
      const at = Date.now() + START_DELAY_MS
      const [a, b] = await Promise.all([workers[0]!.go(at), workers[1]!.go(at)])
      const overlapped = Math.max(a.startedAt, b.startedAt) <= Math.min(a.finishedAt, b.finishedAt)
      return { all: [...a.outcomes, ...b.outcomes], overlapped, span: Math.max(a.finishedAt, b.finishedAt) - Math.min(a.startedAt, b.startedAt) }
    }

    /**
     * Runs a scenario (fresh keys and owners each time) until its race overlapped, at most ATTEMPTS
     * times. Every attempt checks every invariant, overlapped or not; the repeat only makes sure the
     * two processes really raced at least once.
     */
    async function untilOverlapped(scenario: (attempt: number) => Promise<boolean>): Promise<void> {
      const overlaps: boolean[] = []
      for (let attempt = 1; attempt <= ATTEMPTS && !overlaps.includes(true); attempt++) overlaps.push(await scenario(attempt))
      expect(overlaps, 'the two workers ran their halves at the same time in some attempt').toContain(true)
    }

    /**
     * The checks of a rate race: exactly LIMIT passed, every other verify was `rate_limited`, and each
     * pass took a different unit of the counter (their `remaining` are LIMIT-1 … 0, each once: two
     * passes from one state would repeat a number); every refusal saw the counter empty.
     */
    function expectExactlyTheLimit(all: readonly Outcome[], total: number): void {
      expectOnlyTypedErrors(all, {})
      const { passed, refused } = tally(all)
      expect(passed, 'verifies that passed').toHaveLength(LIMIT)
      expect(refused.map((outcome) => outcome.reason)).toEqual(times(total - LIMIT, () => 'rate_limited'))
      expect(ascending(passed.map((outcome) => outcome.remaining?.[0])), 'what each pass left').toEqual(series(LIMIT, 0, 1))
      expect(refused.filter((outcome) => outcome.remaining?.[0] !== 0), 'refusals that saw room left').toEqual([])
    }

    for (const path of PATHS) {
      describe(path.label, () => {
        for (const policy of ['hourly', 'daily'] as const) {
          const algorithm = POLICIES![policy]!.rate![0]!.algorithm ?? 'token-bucket'
          it(`${policy} (${algorithm}, ${LIMIT} per window): 2 × 100 concurrent verifies let exactly ${LIMIT} through, the rest rate_limited`, async () => {
            await untilOverlapped(async (attempt) => {
              const { token } = await keys.create({ name: `${policy}-${attempt}`, environment: 'live', policy })
              if (path.warm) await warmUp([[token], [token]])
              const { all, overlapped, span } = await race(verifies(token, 100), verifies(token, 100))

              if (policy === 'hourly') expect(span, 'the race ended before the bucket could refill a whole token').toBeLessThan(HOURLY_TOKEN_MS)
              expectExactlyTheLimit(all, 200)
              // A third client, this process, finds the counter spent too (an uncharged check).
              expect(await keys.verify(token, { consume: false })).toMatchObject({ valid: false, reason: 'rate_limited' })
              return overlapped
            })
          }, 30_000)
        }

        it('credits 100, 2 × 50 concurrent verifies of cost 3: exactly 33 pass, the rest usage_exceeded, never below zero, 1 left', async () => {
          await untilOverlapped(async (attempt) => {
            const { key, token } = await keys.create({ name: `payg-${attempt}`, environment: 'live', credits: 100 })
            if (path.warm) await warmUp([[token], [token]])
            const { all, overlapped } = await race(verifies(token, 50, 3), verifies(token, 50, 3))

            expectOnlyTypedErrors(all, {})
            const { passed, refused } = tally(all)
            expect(passed, 'verifies that passed').toHaveLength(33)
            expect(refused.map((outcome) => outcome.reason)).toEqual(times(67, () => 'usage_exceeded'))
            // Each pass charged a balance no other pass charged: they left 97, 94, …, 1, each once.
            expect(ascending(passed.map((outcome) => outcome.credits)), 'the balance each pass left').toEqual(series(33, 1, 3))
            // A refusal found less than the cost; the only such balance this race can reach is the last one.
            expect(ascending(refused.map((outcome) => outcome.credits)), 'the balance each refusal saw').toEqual(times(67, () => 1))
            expect(await keys.getCredits({ keyId: key.id })).toEqual({ remaining: 1, refillAt: null })
            return overlapped
          })
        }, 30_000)

        it(`per owner: one key of an owner in each process, 2 × 100 concurrent verifies share one counter: exactly ${LIMIT} in total`, async () => {
          await untilOverlapped(async (attempt) => {
            const owner = { ownerId: `pool-${path.warm ? 'warm' : 'cold'}-${attempt}`, tenantId: 'limits', environment: 'live', policy: 'pooled' } as const
            const [a, b] = await Promise.all([keys.create({ name: 'a', ...owner }), keys.create({ name: 'b', ...owner })])
            if (path.warm) await warmUp([[a.token], [b.token]])
            const { all, overlapped } = await race(verifies(a.token, 100), verifies(b.token, 100))

            expectExactlyTheLimit(all, 200)
            expect(await keys.verify(a.token, { consume: false })).toMatchObject({ valid: false, reason: 'rate_limited' })
            expect(await keys.verify(b.token, { consume: false })).toMatchObject({ valid: false, reason: 'rate_limited' })
            // The pool is the owner's, not the policy's: another owner's key under it still has its own 50.
            const other = await keys.create({ name: 'c', ...owner, ownerId: `${owner.ownerId}-other` })
            expect(await keys.verify(other.token)).toMatchObject({ valid: true, limits: [{ name: 'shared', remaining: LIMIT - 1 }] })
            return overlapped
          })
        }, 30_000)
      })
    }
  })
}
