/**
 * Conformance cases for the usage primitives (rate counters, credit balances): the arithmetic of
 * {@link UsageStore}, all-or-nothing consumption, and exactness under concurrency.
 */
import type { KeyStore } from '../../store.js'
import type { CreditPool, GuardedUsageRequest, RateCounter, UsageRequest, UsageStore } from '../../limits/usage-store.js'
import { isUsageStore } from '../../limits/usage-store.js'
import { makeRecord, T0 } from '../records.js'
import { count, insertAll, type SuiteContext } from './case-helpers.js'

/** The store as a UsageStore; a store without the primitives fails here, naming the way out. */
function usageOf(store: KeyStore): UsageStore {
  if (!isUsageStore(store)) throw new Error('the store does not implement UsageStore (consumeUsage, adjustCredits): implement it, or pass usage: false')
  return store
}

const bucket = (overrides: Partial<RateCounter> = {}): RateCounter => ({
  id: 'rate:p:burst:key:k1',
  algorithm: 'token-bucket',
  limit: 10,
  capacity: 10,
  windowMs: 1000,
  ...overrides,
})

const window = (overrides: Partial<RateCounter> = {}): RateCounter => ({
  id: 'rate:p:daily:key:k1',
  algorithm: 'fixed-window',
  limit: 5,
  capacity: 5,
  windowMs: 86_400_000,
  ...overrides,
})

const pool = (overrides: Partial<CreditPool> = {}): CreditPool => ({ id: 'credits:key:k1', initial: 100, refill: null, ...overrides })

const request = (overrides: Partial<UsageRequest> = {}): UsageRequest => ({ now: T0, cost: 1, commit: true, rate: [], credits: null, ...overrides })

/** A day boundary (midnight UTC) after T0, so fixed windows are easy to reason about. */
const MIDNIGHT = T0 - (T0 % 86_400_000) + 86_400_000

export function usageTests({ test, expect }: SuiteContext): void {
  test('usage: a token bucket starts full and refuses the request after its capacity', async (store) => {
    const usage = usageOf(store)
    const counter = bucket()
    const outcomes = []
    for (let i = 0; i < 11; i++) outcomes.push(await usage.consumeUsage(request({ rate: [counter] })))
    expect(outcomes.slice(0, 10).map((outcome) => outcome.refused)).toEqual(Array(10).fill(null))
    expect(outcomes[0]!.rate).toEqual([{ value: 9, at: T0 }])
    expect(outcomes[9]!.rate).toEqual([{ value: 0, at: T0 }])
    expect(outcomes[10]).toEqual({ refused: 'rate_limited', rate: [{ value: 0, at: T0 }], credits: null })
  })

  test('usage: a token bucket refills at limit per window, fractions included, up to its capacity', async (store) => {
    const usage = usageOf(store)
    const counter = bucket({ limit: 4, capacity: 8, windowMs: 1000 })
    await usage.consumeUsage(request({ rate: [counter], cost: 8 }))
    // 4 tokens per second: after 125 ms, 0.5 of a token is back; a request of 1 is refused.
    expect(await usage.consumeUsage(request({ rate: [counter], now: T0 + 125 }))).toMatchObject({ refused: 'rate_limited', rate: [{ value: 0.5, at: T0 + 125 }] })
    expect(await usage.consumeUsage(request({ rate: [counter], now: T0 + 250 }))).toMatchObject({ refused: null, rate: [{ value: 0, at: T0 + 250 }] })
    // Ten seconds later the bucket holds its capacity (8), not 40.
    expect(await usage.consumeUsage(request({ rate: [counter], now: T0 + 10_250, cost: 0 }))).toMatchObject({ refused: null, rate: [{ value: 8, at: T0 + 10_250 }] })
  })

  test('usage: a token bucket never refills backwards when a later request carries an earlier instant', async (store) => {
    const usage = usageOf(store)
    const counter = bucket({ capacity: 2, limit: 2 })
    await usage.consumeUsage(request({ rate: [counter], now: T0 + 500, cost: 2 }))
    expect(await usage.consumeUsage(request({ rate: [counter], now: T0 }))).toMatchObject({ refused: 'rate_limited', rate: [{ value: 0, at: T0 + 500 }] })
  })

  test('usage: a fixed window counts up to its limit and starts again at the next epoch-aligned window', async (store) => {
    const usage = usageOf(store)
    const counter = window({ limit: 3 })
    for (let i = 0; i < 3; i++) expect((await usage.consumeUsage(request({ rate: [counter], now: MIDNIGHT - 3 + i }))).refused).toBeNull()
    expect(await usage.consumeUsage(request({ rate: [counter], now: MIDNIGHT - 1 }))).toEqual({
      refused: 'rate_limited',
      rate: [{ value: 3, at: MIDNIGHT - 86_400_000 }],
      credits: null,
    })
    expect(await usage.consumeUsage(request({ rate: [counter], now: MIDNIGHT }))).toEqual({ refused: null, rate: [{ value: 1, at: MIDNIGHT }], credits: null })
  })

  test('usage: a cost larger than one counts as that many requests, and cost 0 passes an exhausted counter', async (store) => {
    const usage = usageOf(store)
    const counter = window({ limit: 10 })
    expect((await usage.consumeUsage(request({ rate: [counter], cost: 7 }))).rate).toEqual([{ value: 7, at: MIDNIGHT - 86_400_000 }])
    expect((await usage.consumeUsage(request({ rate: [counter], cost: 4 }))).refused).toBe('rate_limited')
    expect((await usage.consumeUsage(request({ rate: [counter], cost: 3 }))).refused).toBeNull()
    expect(await usage.consumeUsage(request({ rate: [counter], cost: 0 }))).toMatchObject({ refused: null, rate: [{ value: 10 }] })
  })

  test('usage: a refusal by one counter charges none of the others', async (store) => {
    const usage = usageOf(store)
    const roomy = bucket({ id: 'rate:p:roomy:key:k1', capacity: 100, limit: 100 })
    const tight = window({ id: 'rate:p:tight:key:k1', limit: 1 })
    expect((await usage.consumeUsage(request({ rate: [roomy, tight] }))).refused).toBeNull()
    expect(await usage.consumeUsage(request({ rate: [roomy, tight] }))).toMatchObject({ refused: 'rate_limited', rate: [{ value: 99 }, { value: 1 }] })
    expect((await usage.consumeUsage(request({ rate: [roomy], cost: 0 }))).rate).toEqual([{ value: 99, at: T0 }])
  })

  test('usage: commit false decides the same and writes nothing', async (store) => {
    const usage = usageOf(store)
    const counter = window({ limit: 2 })
    const credits = pool({ initial: 5 })
    const dryRun = await usage.consumeUsage(request({ rate: [counter], credits, cost: 2, commit: false }))
    expect(dryRun).toEqual({ refused: null, rate: [{ value: 2, at: MIDNIGHT - 86_400_000 }], credits: { previous: 5, remaining: 3 } })
    const real = await usage.consumeUsage(request({ rate: [counter], credits, cost: 2 }))
    expect(real).toEqual(dryRun)
    expect((await usage.consumeUsage(request({ rate: [counter], credits, commit: false }))).refused).toBe('rate_limited')
  })

  test('usage: credits start at the initial balance, are charged by cost, and refuse below cost without moving', async (store) => {
    const usage = usageOf(store)
    const credits = pool({ initial: 5 })
    expect((await usage.consumeUsage(request({ credits, cost: 3 }))).credits).toEqual({ previous: 5, remaining: 2 })
    expect(await usage.consumeUsage(request({ credits, cost: 3 }))).toEqual({ refused: 'usage_exceeded', rate: [], credits: { previous: 2, remaining: 2 } })
    expect(await usage.consumeUsage(request({ credits, cost: 2 }))).toEqual({ refused: null, rate: [], credits: { previous: 2, remaining: 0 } })
    expect((await usage.consumeUsage(request({ credits, cost: 0 }))).refused).toBeNull()
    expect((await usage.consumeUsage(request({ credits, cost: 1 }))).refused).toBe('usage_exceeded')
  })

  test('usage: a rate-limited request spends no credit; a usage-exceeded one still counts against the rate', async (store) => {
    const usage = usageOf(store)
    const counter = window({ limit: 2 })
    const credits = pool({ initial: 1 })
    expect((await usage.consumeUsage(request({ rate: [counter], credits }))).refused).toBeNull()
    expect(await usage.consumeUsage(request({ rate: [counter], credits }))).toMatchObject({ refused: 'usage_exceeded', rate: [{ value: 2 }], credits: { remaining: 0 } })
    expect(await usage.consumeUsage(request({ rate: [counter], credits: pool({ id: 'credits:key:other', initial: 10 }) }))).toMatchObject({
      refused: 'rate_limited',
      credits: { previous: 10, remaining: 10 },
    })
    expect((await usage.consumeUsage(request({ credits: pool({ id: 'credits:key:other', initial: 10 }), cost: 0 }))).credits).toEqual({ previous: 10, remaining: 10 })
  })

  test('usage: a balance refills to the amount once per period, lazily, and a new period refills again', async (store) => {
    const usage = usageOf(store)
    const period = (start: number) => pool({ initial: 3, refill: { amount: 3, periodStart: start } })
    await usage.consumeUsage(request({ credits: period(T0), cost: 3 }))
    expect((await usage.consumeUsage(request({ credits: period(T0), now: T0 + 5 }))).refused).toBe('usage_exceeded')
    expect(await usage.consumeUsage(request({ credits: period(T0 + 1000), now: T0 + 1500 }))).toEqual({
      refused: null,
      rate: [],
      credits: { previous: 0, remaining: 2 },
    })
    // Still the same period: no second refill.
    expect((await usage.consumeUsage(request({ credits: period(T0 + 1000), now: T0 + 1600, cost: 2 }))).credits).toEqual({ previous: 2, remaining: 0 })
    expect((await usage.consumeUsage(request({ credits: period(T0 + 2000), now: T0 + 2000, cost: 0 }))).credits).toEqual({ previous: 0, remaining: 3 })
  })

  test('usage: adjustCredits sets, adds and debits, never below zero, refilling first', async (store) => {
    const usage = usageOf(store)
    const credits = pool({ initial: 10 })
    expect(await usage.adjustCredits({ pool: credits, now: T0, mode: 'add', amount: 5 })).toEqual({ previous: 10, remaining: 15 })
    expect(await usage.adjustCredits({ pool: credits, now: T0, mode: 'add', amount: -20 })).toEqual({ previous: 15, remaining: 0 })
    expect(await usage.adjustCredits({ pool: credits, now: T0, mode: 'set', amount: 42 })).toEqual({ previous: 0, remaining: 42 })
    expect((await usage.consumeUsage(request({ credits, cost: 2 }))).credits).toEqual({ previous: 42, remaining: 40 })
    const refilling = pool({ initial: 10, refill: { amount: 7, periodStart: T0 + 1 } })
    expect(await usage.adjustCredits({ pool: refilling, now: T0 + 1, mode: 'add', amount: 1 })).toEqual({ previous: 40, remaining: 8 })
    expect(await usage.adjustCredits({ pool: pool({ id: 'credits:tenant:fresh', initial: 0 }), now: T0, mode: 'set', amount: -3 })).toEqual({ previous: 0, remaining: 0 })
  })

  test('usage: adjustCredits never takes a balance past Number.MAX_SAFE_INTEGER, even from concurrent top-ups', async (store) => {
    const usage = usageOf(store)
    const max = Number.MAX_SAFE_INTEGER
    const credits = pool({ id: 'credits:key:saturating', initial: max - 10 })
    expect(await usage.adjustCredits({ pool: credits, now: T0, mode: 'add', amount: 5 })).toEqual({ previous: max - 10, remaining: max - 5 })
    expect(await usage.adjustCredits({ pool: credits, now: T0, mode: 'add', amount: max })).toEqual({ previous: max - 5, remaining: max })
    // Each top-up alone fits; together they would pass the bound, so the store's atomic step must stop them.
    const racing = pool({ id: 'credits:key:racing', initial: 0 })
    expect(await usage.adjustCredits({ pool: racing, now: T0, mode: 'set', amount: max - 100 })).toEqual({ previous: 0, remaining: max - 100 })
    const answers = await Promise.all(Array.from({ length: 8 }, () => usage.adjustCredits({ pool: racing, now: T0, mode: 'add', amount: 60 })))
    for (const answer of answers) expect(Number.isSafeInteger(answer.remaining) && answer.remaining <= max).toBe(true)
    expect(answers.filter((answer) => answer.remaining === max)).toHaveLength(7)
    expect(await usage.adjustCredits({ pool: racing, now: T0, mode: 'add', amount: -1 })).toEqual({ previous: max, remaining: max - 1 })
    expect((await usage.consumeUsage(request({ credits: racing, cost: 1 }))).credits).toEqual({ previous: max - 1, remaining: max - 2 })
  })

  test('usage: counters and balances are independent per ID, however long or unusual the ID', async (store) => {
    const usage = usageOf(store)
    const long = 'rate:p:r:owner:' + 'ü%3A'.repeat(100) + ':x'.repeat(90)
    const a = window({ id: long, limit: 1 })
    const b = window({ id: long.slice(0, -1), limit: 1 })
    expect((await usage.consumeUsage(request({ rate: [a] }))).refused).toBeNull()
    expect((await usage.consumeUsage(request({ rate: [a] }))).refused).toBe('rate_limited')
    expect((await usage.consumeUsage(request({ rate: [b] }))).refused).toBeNull()
    expect((await usage.consumeUsage(request({ credits: pool({ id: long, initial: 1 }) }))).credits).toEqual({ previous: 1, remaining: 0 })
    expect((await usage.consumeUsage(request({ credits: pool({ id: long.slice(0, -1), initial: 1 }) }))).credits).toEqual({ previous: 1, remaining: 0 })
  })

  test('usage: 200 concurrent requests against a limit of 50 pass exactly 50, on each algorithm', async (store) => {
    const usage = usageOf(store)
    for (const counter of [bucket({ id: 'rate:c:tb', limit: 50, capacity: 50, windowMs: 3_600_000 }), window({ id: 'rate:c:fw', limit: 50 })]) {
      const outcomes = await Promise.all(Array.from({ length: 200 }, () => usage.consumeUsage(request({ rate: [counter] }))))
      expect(count(outcomes.map((outcome) => outcome.refused), null)).toBe(50)
      expect((await usage.consumeUsage(request({ rate: [counter], cost: 0 }))).rate[0]!.value).toBe(counter.algorithm === 'token-bucket' ? 0 : 50)
    }
  })

  test('usage: 100 concurrent requests of cost 3 against 100 credits pass exactly 33 and leave 1', async (store) => {
    const usage = usageOf(store)
    const credits = pool({ id: 'credits:c', initial: 100 })
    const outcomes = await Promise.all(Array.from({ length: 100 }, () => usage.consumeUsage(request({ credits, cost: 3 }))))
    expect(count(outcomes.map((outcome) => outcome.refused), null)).toBe(33)
    expect((await usage.consumeUsage(request({ credits, cost: 0 }))).credits).toEqual({ previous: 1, remaining: 1 })
  })

  test('usage: concurrent top-ups and debits of one balance all land', async (store) => {
    const usage = usageOf(store)
    const credits = pool({ id: 'credits:adjust', initial: 0 })
    await Promise.all([
      ...Array.from({ length: 30 }, () => usage.adjustCredits({ pool: credits, now: T0, mode: 'add', amount: 10 })),
      ...Array.from({ length: 20 }, () => usage.consumeUsage(request({ credits: { ...credits, initial: 0 }, cost: 0 }))),
    ])
    expect((await usage.consumeUsage(request({ credits, cost: 0 }))).credits!.remaining).toBe(300)
  })

  test('usage: purgeUsage, where a store has it, drops spent counter state and keeps balances', async (store) => {
    const usage = usageOf(store)
    const counter = window({ limit: 1 })
    const credits = pool({ initial: 5 })
    await usage.consumeUsage(request({ rate: [counter], credits }))
    if (usage.purgeUsage === undefined) {
      // Native expiry instead: the next window starts fresh either way.
      expect((await usage.consumeUsage(request({ rate: [counter], now: MIDNIGHT }))).refused).toBeNull()
      return
    }
    expect(await usage.purgeUsage(MIDNIGHT - 1)).toBe(0)
    expect(await usage.purgeUsage(MIDNIGHT)).toBe(1)
    expect(await usage.consumeUsage(request({ rate: [counter], credits, now: MIDNIGHT }))).toEqual({
      refused: null,
      rate: [{ value: 1, at: MIDNIGHT }],
      credits: { previous: 4, remaining: 3 },
    })
  })

  test('usage: consumeIfCurrent, where a store has it, charges only while the record is as last seen', async (store) => {
    const usage = usageOf(store)
    if (usage.consumeIfCurrent === undefined) {
      expect(usage.consumeIfCurrent).toBeUndefined()
      return
    }
    const hash = 'kw1$sha256$-$' + 'ab'.repeat(32)
    const previousHash = 'kw1$sha256$-$' + 'cd'.repeat(32)
    await insertAll(store, [
      makeRecord({ id: 'g1', hash, lastUsedAt: T0 - 5, version: 3 }),
      makeRecord({ id: 'g2', hash: 'kw1$sha256$-$' + 'ef'.repeat(32), previousHash, previousHashExpiresAt: T0 + 10 }),
      makeRecord({ id: 'off', hash, enabled: false }),
      makeRecord({ id: 'gone', hash, revokedAt: T0 - 1 }),
      makeRecord({ id: 'old', hash, expiresAt: T0 }),
    ])
    const counter = window({ id: 'rate:g:w', limit: 2 })
    const guarded = (overrides: Partial<GuardedUsageRequest>): GuardedUsageRequest => ({ ...request({ rate: [counter] }), keyId: 'g1', version: 3, hash, ...overrides })
    expect(await usage.consumeIfCurrent(guarded({}))).toEqual({ applied: true, outcome: { refused: null, rate: [{ value: 1, at: MIDNIGHT - 86_400_000 }], credits: null }, lastUsedAt: T0 - 5 })
    for (const refused of [guarded({ version: 2 }), guarded({ hash: previousHash }), guarded({ keyId: 'off' }), guarded({ keyId: 'gone' }), guarded({ keyId: 'old' }), guarded({ keyId: 'g2', version: 1, hash: previousHash, now: T0 + 10 })]) {
      const answer = await usage.consumeIfCurrent(refused)
      expect(answer.applied).toBe(false)
      expect(!answer.applied && answer.record?.id).toBe(refused.keyId)
    }
    expect(await usage.consumeIfCurrent(guarded({ keyId: 'ghost' }))).toEqual({ applied: false, record: null })
    expect((await usage.consumeIfCurrent(guarded({ keyId: 'g2', version: 1, hash: previousHash }))).applied).toBe(true)
    // Two charges landed (g1 once, g2 once): the window is full, and the refusals wrote nothing.
    expect((await usage.consumeUsage(request({ rate: [counter] }))).refused).toBe('rate_limited')
  })

  test('usage: 200 concurrent guarded requests against a limit of 50 pass exactly 50', async (store) => {
    const usage = usageOf(store)
    if (usage.consumeIfCurrent === undefined) {
      expect(usage.consumeIfCurrent).toBeUndefined()
      return
    }
    const hash = 'kw1$sha256$-$' + '12'.repeat(32)
    await insertAll(store, [makeRecord({ id: 'racer', hash })])
    const counter = bucket({ id: 'rate:g:race', limit: 50, capacity: 50, windowMs: 3_600_000 })
    const answers = await Promise.all(Array.from({ length: 200 }, () => usage.consumeIfCurrent!({ ...request({ rate: [counter] }), keyId: 'racer', version: 1, hash })))
    expect(count(answers.map((answer) => answer.applied && answer.outcome.refused === null), true)).toBe(50)
  })
}
