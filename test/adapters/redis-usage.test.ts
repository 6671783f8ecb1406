// RedisStore as a UsageStore beyond the conformance cases: exactness across two clients sharing one
// namespace, a differential run against MemoryStore (the Lua must compute the JavaScript's doubles),
// the counters' TTLs, and records written by 0.1.0 (no `policy`, no `hasCredits`).
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { RedisStore, type SendCommand } from '../../adapters/redis/index.js'
import { orderMember } from '../../adapters/redis/keys.js'
import { counterExpiresAt } from '../../src/limits/usage-arithmetic.js'
import type { CreditAdjustment, CreditPool, RateCounter, UsageRequest, UsageStore } from '../../src/limits/usage-store.js'
import { StoreError } from '../../src/index.js'
import { makeRecord, T0 } from '../conformance/records.js'
import { redisGate } from '../support/gates.js'
import { deleteRedisNamespace, SERVICES, uniqueSuffix } from '../support/services.js'

const gate = await redisGate()

/** A deterministic pseudo-random sequence (mulberry32), so the differential run is reproducible. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const request = (overrides: Partial<UsageRequest> = {}): UsageRequest => ({ now: T0, cost: 1, commit: true, rate: [], credits: null, ...overrides })

describe.skipIf(!gate.available)('RedisStore usage', () => {
  let ioredis: Redis
  let nodeRedis: ReturnType<typeof createClient>

  beforeAll(async () => {
    ioredis = new Redis(SERVICES.redis)
    nodeRedis = createClient({ socket: SERVICES.redis })
    await nodeRedis.connect()
  })

  afterAll(async () => {
    await ioredis?.quit()
    await nodeRedis?.close()
  })

  async function withNamespace(body: (namespace: string) => Promise<void>): Promise<void> {
    const namespace = `kwusage-${uniqueSuffix()}`
    try {
      await body(namespace)
    } finally {
      await deleteRedisNamespace(ioredis, namespace)
    }
  }

  describe('two stores on two clients (ioredis, node-redis) over one namespace', () => {
    /** 200 concurrent requests, alternating between the two stores. */
    const split = <T>(stores: readonly UsageStore[], length: number, call: (store: UsageStore) => Promise<T>) =>
      Promise.all(Array.from({ length }, (_, i) => call(stores[i % stores.length]!)))

    for (const algorithm of ['token-bucket', 'fixed-window'] as const) {
      it(`${algorithm}: 200 concurrent requests against a limit of 50 pass exactly 50`, async () => {
        await withNamespace(async (namespace) => {
          const stores = [new RedisStore({ client: ioredis, namespace }), new RedisStore({ client: nodeRedis, namespace })]
          const counter: RateCounter = { id: `rate:shared:${algorithm}`, algorithm, limit: 50, capacity: 50, windowMs: 3_600_000 }
          const outcomes = await split(stores, 200, (store) => store.consumeUsage(request({ rate: [counter] })))
          expect(outcomes.filter((outcome) => outcome.refused === null)).toHaveLength(50)
          expect(outcomes.filter((outcome) => outcome.refused === 'rate_limited')).toHaveLength(150)
          // Each store sees what the other wrote.
          for (const store of stores) {
            expect((await store.consumeUsage(request({ rate: [counter], cost: 0 }))).rate[0]!.value).toBe(algorithm === 'token-bucket' ? 0 : 50)
          }
        })
      })
    }

    it('credits: 100 concurrent requests of cost 3 against 100 credits pass exactly 33 and leave 1', async () => {
      await withNamespace(async (namespace) => {
        const stores = [new RedisStore({ client: ioredis, namespace }), new RedisStore({ client: nodeRedis, namespace })]
        const credits: CreditPool = { id: 'credits:shared', initial: 100, refill: null }
        const outcomes = await split(stores, 100, (store) => store.consumeUsage(request({ credits, cost: 3 })))
        expect(outcomes.filter((outcome) => outcome.refused === null)).toHaveLength(33)
        expect(outcomes.filter((outcome) => outcome.refused === 'usage_exceeded')).toHaveLength(67)
        for (const store of stores) expect((await store.consumeUsage(request({ credits, cost: 0 }))).credits).toEqual({ previous: 1, remaining: 1 })
      })
    })
  })

  it('a seeded random sequence gives the same outcome as MemoryStore at every step, to the bit', async () => {
    // Redis expires counter keys on its own clock while this run's clock jumps by seconds per step: a
    // key could vanish before the simulated clock reaches its expiry, a difference of clocks, not of
    // arithmetic. So each script runs in one MULTI with a PERSIST of its keys (TTLs are tested below).
    const persisting: SendCommand = async (args) => {
      if (args[0] !== 'EVALSHA' && args[0] !== 'EVAL') return ioredis.call(args[0]!, ...args.slice(1))
      const keys = args.slice(3, 3 + Number(args[2]))
      const transaction = ioredis.multi().call(args[0], ...args.slice(1))
      for (const key of keys) transaction.call('PERSIST', key)
      const results = await transaction.exec()
      const [error, reply] = results![0]!
      if (error) throw error
      return reply
    }
    await withNamespace(async (namespace) => {
      const redis = new RedisStore({ client: persisting, namespace })
      const memory = new MemoryStore()
      const next = random(20_261_201)
      const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
      const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!

      const counters: RateCounter[] = [
        { id: 'rate:odd:tb', algorithm: 'token-bucket', limit: 7, capacity: 10, windowMs: 3001 },
        { id: 'rate:odd:tb-burst', algorithm: 'token-bucket', limit: 13, capacity: 4, windowMs: 997 },
        { id: 'rate:odd:tb-slow', algorithm: 'token-bucket', limit: 3, capacity: 3, windowMs: 60_007 },
        { id: 'rate:odd:fw', algorithm: 'fixed-window', limit: 5, capacity: 5, windowMs: 3001 },
        { id: 'rate:odd:fw-minute', algorithm: 'fixed-window', limit: 11, capacity: 11, windowMs: 60_000 },
      ]
      const PERIOD_MS = 7_919
      const pools = (now: number): CreditPool[] => [
        { id: 'credits:plain', initial: 40, refill: null },
        { id: 'credits:refilling', initial: 12, refill: { amount: 9, periodStart: now - (now % PERIOD_MS) } },
        { id: 'credits:empty', initial: 0, refill: null },
      ]

      let now = T0 + 123
      const seen = { fractional: 0, rate_limited: 0, usage_exceeded: 0, passed: 0, dryRuns: 0, adjustments: 0, earlier: 0 }
      for (let step = 0; step < 1500; step++) {
        const jump = next()
        if (jump < 0.15) now += 0
        else if (jump < 0.25) now -= int(1, 700) // another instance's clock, a little behind
        else if (jump < 0.7) now += int(1, 400)
        else if (jump < 0.95) now += int(401, 5_000)
        else now += int(5_001, 90_000)
        if (jump >= 0.15 && jump < 0.25) seen.earlier++

        if (next() < 0.1) {
          const change: CreditAdjustment = { pool: pick(pools(now)), now, mode: pick(['set', 'add'] as const), amount: int(-25, 30) }
          seen.adjustments++
          expect(await redis.adjustCredits(change), `step ${step}: ${JSON.stringify(change)}`).toEqual(await memory.adjustCredits(change))
          continue
        }
        // Up to three counters in any order; now and then one named twice.
        const rate = Array.from({ length: int(0, 3) }, () => pick(counters))
        const usage = request({ now, cost: int(0, 5), commit: next() < 0.8, rate, credits: next() < 0.6 ? pick(pools(now)) : null })
        const expected = await memory.consumeUsage(usage)
        const actual = await redis.consumeUsage(usage)
        expect(actual, `step ${step}: ${JSON.stringify(usage)}`).toEqual(expected)
        // toEqual compares numbers with Object.is; the shortest round-trip text is unique per double too.
        expect(JSON.stringify(actual)).toBe(JSON.stringify(expected))
        seen[expected.refused ?? 'passed']++
        if (!usage.commit) seen.dryRuns++
        if (expected.rate.some((state) => !Number.isInteger(state.value))) seen.fractional++
      }
      // The run reached every branch worth comparing.
      for (const [what, times] of Object.entries(seen)) expect(times, what).toBeGreaterThan(20)
    })
  })

  describe('expiry', () => {
    it('a counter key expires when its state stops mattering, measured from the request; a balance never', async () => {
      await withNamespace(async (namespace) => {
        const store = new RedisStore({ client: ioredis, namespace })
        const bucket: RateCounter = { id: 'rate:ttl:tb', algorithm: 'token-bucket', limit: 7, capacity: 10, windowMs: 3001 }
        const window: RateCounter = { id: 'rate:ttl:fw', algorithm: 'fixed-window', limit: 5, capacity: 5, windowMs: 86_400_000 }
        const credits: CreditPool = { id: 'credits:ttl', initial: 10, refill: null }
        // T0 is in 2023: the TTLs are durations from `now`, not instants on the server's clock.
        const outcome = await store.consumeUsage(request({ rate: [bucket, window], credits, cost: 2 }))
        expect(outcome.refused).toBeNull()
        const pttl = (key: string) => ioredis.pttl(`{${namespace}}:${key}`)

        // A bucket of 8 tokens out of 10 is full again after 2 tokens at 7 per 3001 ms: ceil(857.43) ms.
        const bucketTtl = counterExpiresAt(bucket, outcome.rate[0]!) - T0
        expect(bucketTtl).toBe(858)
        // The window opened at the day's midnight UTC (T0 is 22:13:20) and ends at the next one.
        const windowTtl = counterExpiresAt(window, outcome.rate[1]!) - T0
        expect(windowTtl).toBe(86_400_000 - (T0 % 86_400_000))
        for (const [key, expected] of [['counter:rate:ttl:tb', bucketTtl], ['counter:rate:ttl:fw', windowTtl]] as const) {
          const left = await pttl(key)
          expect(left, key).toBeLessThanOrEqual(expected)
          expect(left, key).toBeGreaterThan(expected - 1000)
        }
        expect(await pttl('balance:credits:ttl')).toBe(-1)

        // A full bucket stops mattering at once: the shortest TTL, 1 ms (Redis may drop it by the next read).
        await store.consumeUsage(request({ rate: [{ ...bucket, id: 'rate:ttl:full' }], cost: 0 }))
        expect(await pttl('counter:rate:ttl:full')).toBeLessThanOrEqual(1)

        // A top-up leaves the balance without a TTL too.
        await store.adjustCredits({ pool: { ...credits, id: 'credits:ttl:topup' }, now: T0, mode: 'add', amount: 5 })
        expect(await pttl('balance:credits:ttl:topup')).toBe(-1)
      })
    })

    it('a dry run writes no key; a rate-limited request keeps the stored state and its TTL; usage_exceeded writes only counters', async () => {
      await withNamespace(async (namespace) => {
        const store = new RedisStore({ client: ioredis, namespace })
        const window: RateCounter = { id: 'rate:w', algorithm: 'fixed-window', limit: 1, capacity: 1, windowMs: 60_000 }
        const credits: CreditPool = { id: 'credits:c', initial: 0, refill: null }
        await store.consumeUsage(request({ rate: [window], credits, commit: false }))
        expect(await ioredis.exists(`{${namespace}}:counter:rate:w`, `{${namespace}}:balance:credits:c`)).toBe(0)

        expect((await store.consumeUsage(request({ rate: [window], credits }))).refused).toBe('usage_exceeded')
        expect(await ioredis.hgetall(`{${namespace}}:counter:rate:w`)).toEqual({ value: '1', at: String(T0 - (T0 % 60_000)) })
        expect(await ioredis.exists(`{${namespace}}:balance:credits:c`)).toBe(0)
        const ttl = await ioredis.pttl(`{${namespace}}:counter:rate:w`)

        expect((await store.consumeUsage(request({ rate: [window], credits, now: T0 + 10_000 }))).refused).toBe('rate_limited')
        expect(await ioredis.hgetall(`{${namespace}}:counter:rate:w`)).toEqual({ value: '1', at: String(T0 - (T0 % 60_000)) })
        // Not reset to the 10 s shorter TTL a rewrite at T0 + 10 s would set: nothing was written.
        expect(await ioredis.pttl(`{${namespace}}:counter:rate:w`)).toBeGreaterThan(ttl - 5_000)
      })
    })
  })

  describe('key names', () => {
    it('counter and pool IDs map to their own families under the hash tag, injectively', async () => {
      await withNamespace(async (namespace) => {
        const store = new RedisStore({ client: ioredis, namespace })
        await store.insert(makeRecord({ id: 'k1' }), null)
        const window = (id: string): RateCounter => ({ id, algorithm: 'fixed-window', limit: 1, capacity: 1, windowMs: 60_000 })
        // Lone surrogates differ as strings, but both would reach Redis as U+FFFD unescaped.
        const ids = ['k1', 'key:k1', 'idx:all', 'meta', 'x', 'x%', '%0078', '\ud800', '\udbff', '{a}', 'a*b?[c]', ' ', 'ü', 'u']
        for (const id of ids) {
          expect((await store.consumeUsage(request({ rate: [window(id)] }))).refused, JSON.stringify(id)).toBeNull()
          // The same ID as a pool is another key.
          expect((await store.consumeUsage(request({ credits: { id, initial: 1, refill: null } }))).credits, JSON.stringify(id)).toEqual({ previous: 1, remaining: 0 })
        }
        for (const id of ids) expect((await store.consumeUsage(request({ rate: [window(id)] }))).refused, JSON.stringify(id)).toBe('rate_limited')
        // The record was not touched, and every key stays in the namespace, free of glob characters.
        expect(await store.get('k1')).toEqual(makeRecord({ id: 'k1' }))
        const keys: string[] = []
        let cursor = '0'
        do {
          const [nextCursor, batch] = await ioredis.scan(cursor, 'MATCH', `{${namespace}}:*`, 'COUNT', 1000)
          keys.push(...batch)
          cursor = nextCursor
        } while (cursor !== '0')
        const usageKeys = keys.filter((key) => /^\{[^}]+\}:(counter|balance):/.test(key))
        expect(usageKeys).toHaveLength(ids.length * 2)
        for (const key of usageKeys) expect(key.slice(namespace.length + 2)).not.toMatch(/[{} *?[\]]/)
        expect(usageKeys).toContain(`{${namespace}}:counter:key:k1`)
      })
    })

    it('an ID of 600 characters works, and so does a request with no counter and no balance', async () => {
      await withNamespace(async (namespace) => {
        const store = new RedisStore({ client: nodeRedis, namespace })
        const id = '日本'.repeat(300)
        const counter: RateCounter = { id, algorithm: 'token-bucket', limit: 1, capacity: 1, windowMs: 1000 }
        expect((await store.consumeUsage(request({ rate: [counter] }))).rate).toEqual([{ value: 0, at: T0 }])
        expect(await store.consumeUsage(request())).toEqual({ refused: null, rate: [], credits: null })
      })
    })
  })

  describe('failures', () => {
    it('a counter key of another type fails the request with a StoreError and writes nothing', async () => {
      await withNamespace(async (namespace) => {
        const store = new RedisStore({ client: ioredis, namespace })
        const first: RateCounter = { id: 'rate:first', algorithm: 'fixed-window', limit: 5, capacity: 5, windowMs: 60_000 }
        const second: RateCounter = { ...first, id: 'rate:second' }
        const credits: CreditPool = { id: 'credits:k', initial: 5, refill: null }
        await ioredis.set(`{${namespace}}:counter:rate:second`, 'written by someone else')
        const failed = await store.consumeUsage(request({ rate: [first, second], credits })).catch((error: unknown) => error)
        expect(failed).toBeInstanceOf(StoreError)
        expect(failed).toMatchObject({ code: 'store_failed', operation: 'consumeUsage' })
        expect(await ioredis.exists(`{${namespace}}:counter:rate:first`, `{${namespace}}:balance:credits:k`)).toBe(0)

        await ioredis.set(`{${namespace}}:balance:credits:k`, 'written by someone else')
        const adjusted = await store.adjustCredits({ pool: credits, now: T0, mode: 'add', amount: 1 }).catch((error: unknown) => error)
        expect(adjusted).toMatchObject({ code: 'store_failed', operation: 'adjustCredits' })
        const consumed = await store.consumeUsage(request({ rate: [first], credits })).catch((error: unknown) => error)
        expect(consumed).toMatchObject({ code: 'store_failed', operation: 'consumeUsage' })
        expect(await ioredis.exists(`{${namespace}}:counter:rate:first`)).toBe(0)
      })
    })

    it('a closed client makes both operations reject with a StoreError naming them', async () => {
      const closed = createClient({ socket: SERVICES.redis })
      const store = new RedisStore({ client: closed, namespace: 'closed' })
      const pool: CreditPool = { id: 'credits:x', initial: 1, refill: null }
      await expect(store.consumeUsage(request({ credits: pool }))).rejects.toMatchObject({ code: 'store_failed', operation: 'consumeUsage' })
      await expect(store.adjustCredits({ pool, now: T0, mode: 'set', amount: 1 })).rejects.toMatchObject({ code: 'store_failed', operation: 'adjustCredits' })
    })

    it('has no purgeUsage: counter keys expire by themselves', () => {
      expect('purgeUsage' in new RedisStore({ client: ioredis })).toBe(false)
    })
  })

  describe('records written by 0.1.0 (no policy, no hasCredits)', () => {
    it('read as policy null and hasCredits false, without a migration, and update writes both', async () => {
      await withNamespace(async (namespace) => {
        const store = new RedisStore({ client: ioredis, namespace })
        const record = makeRecord({ id: 'old1', ownerId: 'u1', name: 'from 0.1.0', scopes: ['data:read'] })
        // The hash exactly as 0.1.0's insert script wrote it: its `doc` has no policy and no hasCredits.
        const fixed = JSON.stringify({ id: 'old1', ownerId: 'u1', tenantId: null, environment: 'live', createdAt: T0 })
        const doc = JSON.stringify({
          name: 'from 0.1.0',
          description: null,
          type: null,
          scopes: ['data:read'],
          roles: [],
          groups: [],
          metadata: {},
          start: record.start,
          hash: record.hash,
          previousHash: null,
          previousHashExpiresAt: null,
          updatedAt: T0,
          expiresAt: null,
          enabled: true,
          revokedAt: null,
          expiryNoticeFor: null,
        })
        await ioredis.hset(`{${namespace}}:key:old1`, 'fixed', fixed, 'doc', doc, 'version', '1')
        await ioredis.zadd(`{${namespace}}:idx:all`, 0, orderMember(T0, 'old1'))
        await ioredis.zadd(`{${namespace}}:idx:owner:u1`, 0, orderMember(T0, 'old1'))
        await ioredis.sadd(`{${namespace}}:live:owner:u1`, 'old1')

        const read = await store.get('old1')
        expect(read).toEqual(record)
        expect(read).toMatchObject({ policy: null, hasCredits: false })
        expect(await store.list({ now: T0, order: 'asc', limit: 10 })).toEqual([record])
        expect(await store.list({ ownerId: 'u1', now: T0, order: 'asc', limit: 10 })).toEqual([record])

        expect(await store.update({ ...record, version: 2, policy: 'pro-2026.v2', hasCredits: true }, 1)).toBe('updated')
        expect(await store.get('old1')).toEqual({ ...record, version: 2, policy: 'pro-2026.v2', hasCredits: true })
        expect(await store.update({ ...record, version: 3, policy: null, hasCredits: false }, 2)).toBe('updated')
        expect(await store.get('old1')).toEqual({ ...record, version: 3 })
      })
    })

    it('a record given without the fields (a caller written against 0.1.0) reads them as null and false', async () => {
      await withNamespace(async (namespace) => {
        const store = new RedisStore({ client: nodeRedis, namespace })
        const { policy: _policy, hasCredits: _hasCredits, ...old } = makeRecord({ id: 'old2' })
        expect(await store.insert(old, null)).toBe('inserted')
        expect(await store.get('old2')).toEqual(makeRecord({ id: 'old2' }))
      })
    })
  })
})
