import { describe, expect, it, vi } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import {
  ConfigError,
  KeyManager,
  KeyNotFoundError,
  StoreError,
  ValidationError,
  type KeyEvent,
  type KeyManagerOptions,
  type LimitsOptions,
  type UsageStore,
} from '../../src/index.js'
import { countingStore, manualClock, START } from '../helpers.js'

const POLICIES: LimitsOptions['policies'] = {
  free: {
    rate: [
      { name: 'burst', limit: 10, window: '1s' },
      { name: 'daily', limit: 1000, window: '1d', algorithm: 'fixed-window' },
    ],
    credits: { refill: { amount: 100, interval: '30d' } },
  },
  pro: { rate: [{ name: 'minute', limit: 6000, window: '1m' }] },
  tiny: { rate: [{ name: 'one', limit: 1, window: '1h' }] },
}

function manager(overrides: Partial<KeyManagerOptions> = {}, limits: Partial<LimitsOptions> = {}) {
  const time = manualClock()
  const store = new MemoryStore()
  const keys = new KeyManager({ store, clock: time.clock, limits: { policies: POLICIES, ...limits }, ...overrides })
  return { keys, store, time }
}

/** A counter store that is down: every call fails as a lost connection would. */
class DownCounters implements UsageStore {
  calls = 0
  async consumeUsage(): Promise<never> {
    this.calls++
    throw new Error('connect ECONNREFUSED 127.0.0.1:6380')
  }
  async adjustCredits(): Promise<never> {
    this.calls++
    throw new Error('connect ECONNREFUSED 127.0.0.1:6380')
  }
}

describe('limits: configuration', () => {
  const rejects = (limits: unknown, path: string) => {
    let error: unknown
    try {
      new KeyManager({ store: new MemoryStore(), limits: limits as LimitsOptions })
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).issues.map((issue) => issue.path.join('.')).some((issuePath) => issuePath.startsWith(path))).toBe(true)
  }

  it('refuses a default policy that is not configured', () => rejects({ policies: POLICIES, defaultPolicy: 'gold' }, 'limits.defaultPolicy'))
  it('refuses a rule without a positive integer limit', () => rejects({ policies: { p: { rate: [{ name: 'r', limit: 0, window: '1s' }] } } }, 'limits.policies.p.rate.0.limit'))
  it('refuses a window of zero', () => rejects({ policies: { p: { rate: [{ name: 'r', limit: 1, window: 0 }] } } }, 'limits.policies.p.rate.0.window'))
  it('refuses burst on a fixed window', () =>
    rejects({ policies: { p: { rate: [{ name: 'r', limit: 1, window: '1s', algorithm: 'fixed-window', burst: 5 }] } } }, 'limits.policies.p.rate.0.burst'))
  it('refuses two rules of one name', () =>
    rejects({ policies: { p: { rate: [{ name: 'r', limit: 1, window: '1s' }, { name: 'r', limit: 2, window: '1m' }] } } }, 'limits.policies.p.rate'))
  it('refuses an unknown scope and an unknown field', () => {
    rejects({ policies: { p: { rate: [{ name: 'r', limit: 1, window: '1s', per: 'team' }] } } }, 'limits.policies.p.rate.0.per')
    rejects({ policies: { p: { rateLimit: [] } } }, 'limits.policies.p')
  })
  it('refuses a calendar day outside 1-31 and a negative refill', () => {
    rejects({ policies: { p: { credits: { refill: { amount: 5, every: 'month', day: 32 } } } } }, 'limits.policies.p.credits.refill')
    rejects({ policies: { p: { credits: { refill: { amount: -1, interval: '1d' } } } } }, 'limits.policies.p.credits.refill')
  })
  it('refuses policies on a store without counters unless limits.counters names one', () => {
    const bare = { insert: vi.fn(), get: vi.fn(), update: vi.fn(), delete: vi.fn(), list: vi.fn(), touch: vi.fn() }
    expect(() => new KeyManager({ store: bare, limits: { policies: POLICIES } })).toThrow(ConfigError)
    expect(() => new KeyManager({ store: bare, limits: { policies: POLICIES, counters: new MemoryStore() } })).not.toThrow()
    rejects({ policies: POLICIES, counters: {} }, 'limits.counters')
  })
})

describe('limits: inputs', () => {
  it('refuses an unknown policy on create and update, and accepts null to return to the default', async () => {
    const { keys } = manager()
    await expect(keys.create({ name: 'x', environment: 'live', policy: 'gold' })).rejects.toThrow(ValidationError)
    const { key } = await keys.create({ name: 'x', environment: 'live', policy: 'pro' })
    expect(key.policy).toBe('pro')
    await expect(keys.update(key.id, { policy: 'gold' })).rejects.toThrow(ValidationError)
    const updated = await keys.update(key.id, { policy: null })
    expect(updated.policy).toBeUndefined()
  })

  it('refuses credits that are not an integer >= 0', async () => {
    const { keys } = manager()
    for (const credits of [-1, 1.5, Number.NaN, '5']) {
      await expect(keys.create({ name: 'x', environment: 'live', credits: credits as number })).rejects.toThrow(ValidationError)
    }
    expect((await keys.list()).items).toHaveLength(0)
  })

  it('refuses a cost that is not an integer >= 0 and a consume that is not a boolean', async () => {
    const { keys } = manager()
    const { token } = await keys.create({ name: 'x', environment: 'live', policy: 'pro' })
    for (const cost of [-1, 0.5, Number.POSITIVE_INFINITY, '1']) await expect(keys.verify(token, { cost: cost as number })).rejects.toThrow(ValidationError)
    await expect(keys.verify(token, { consume: 'no' as unknown as boolean })).rejects.toThrow(ValidationError)
  })

  it('credits calls refuse bad targets and amounts, and name unknown keys', async () => {
    const { keys } = manager()
    await expect(keys.getCredits({} as never)).rejects.toThrow(ValidationError)
    await expect(keys.getCredits({ keyId: 'x', ownerId: 'u' } as never)).rejects.toThrow(ValidationError)
    await expect(keys.getCredits({ keyId: '0123456789abcdef' })).rejects.toThrow(KeyNotFoundError)
    await expect(keys.setCredits({ tenantId: 't' }, -1)).rejects.toThrow(ValidationError)
    await expect(keys.addCredits({ tenantId: 't' }, 0.5)).rejects.toThrow(ValidationError)
    await expect(keys.getCredits({ tenantId: 't', policy: 'gold' })).rejects.toThrow(ValidationError)
  })
})

describe('limits: verify', () => {
  it('gives the limits and credits of a valid request in policy order', async () => {
    const { keys, time } = manager({}, { defaultPolicy: 'free' })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    const result = await keys.verify(token)
    expect(result).toMatchObject({
      valid: true,
      limits: [
        { policy: 'free', name: 'burst', limit: 10, remaining: 9, resetAt: new Date(time.now + 100), windowMs: 1000 },
        { policy: 'free', name: 'daily', limit: 1000, remaining: 999, resetAt: new Date(Date.UTC(2026, 0, 2)), windowMs: 86_400_000 },
      ],
      credits: { remaining: 99 },
    })
  })

  it('a key with no policy and no credits never reaches the counter store', async () => {
    const { store: counters, calls } = countingStore(new MemoryStore())
    const keys = new KeyManager({ store: new MemoryStore(), limits: { policies: POLICIES, counters: counters as unknown as UsageStore } })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    for (let i = 0; i < 5; i++) expect(await keys.verify(token)).toMatchObject({ valid: true, limits: [], credits: null })
    expect(calls['consumeUsage']).toBeUndefined()
    const limited = await keys.create({ name: 'y', environment: 'live', policy: 'pro' })
    await keys.verify(limited.token)
    expect(calls['consumeUsage']).toBe(1)
  })

  it('the default policy may be chosen per key by a function, and a stored name no longer configured falls back to it', async () => {
    const { keys, store } = manager({}, { defaultPolicy: (key) => (key.ownerId === 'vip' ? 'pro' : 'tiny') })
    const vip = await keys.create({ name: 'v', ownerId: 'vip', environment: 'live' })
    const other = await keys.create({ name: 'o', ownerId: 'someone', environment: 'live' })
    expect(await keys.verify(vip.token)).toMatchObject({ valid: true, limits: [{ policy: 'pro' }] })
    expect(await keys.verify(other.token)).toMatchObject({ valid: true, limits: [{ policy: 'tiny' }] })
    // A record written by 0.1.0 has neither policy nor hasCredits: the default applies.
    const { policy, hasCredits, ...legacy } = (await store.get(other.key.id))!
    expect([policy, hasCredits]).toEqual([null, false])
    await store.update({ ...legacy, version: legacy.version + 1 } as never, legacy.version)
    expect(await keys.verify(other.token)).toMatchObject({ valid: false, reason: 'rate_limited' })
    const retired = await keys.create({ name: 'r', ownerId: 'vip', environment: 'live', policy: 'tiny' })
    const without = new KeyManager({ store, limits: { policies: { pro: POLICIES['pro']! }, defaultPolicy: 'pro' } })
    expect(await without.verify(retired.token)).toMatchObject({ valid: true, limits: [{ policy: 'pro' }] })
  })

  it('a cost above a bucket can never pass: refused with the wait until the bucket is full', async () => {
    const { keys } = manager()
    const { token } = await keys.create({ name: 'x', environment: 'live', policy: 'free' })
    expect(await keys.verify(token, { cost: 11 })).toMatchObject({ valid: false, reason: 'rate_limited', violated: ['burst'], retryAfterMs: 0 })
  })

  it('addCredits saturates at Number.MAX_SAFE_INTEGER, even when concurrent top-ups each pass a read-first check', async () => {
    const { keys } = manager()
    const max = Number.MAX_SAFE_INTEGER
    const { key } = await keys.create({ name: 'x', environment: 'live', credits: max - 10 })
    // What a caller's pre-check sees: the balance, with room for each top-up alone.
    const seen = await keys.getCredits({ keyId: key.id })
    expect(seen!.remaining + 6).toBeLessThanOrEqual(max)
    const balances = await Promise.all([keys.addCredits({ keyId: key.id }, 6), keys.addCredits({ keyId: key.id }, 6)])
    expect(balances.map((balance) => balance.remaining).sort()).toEqual([max - 4, max].sort())
    expect(await keys.getCredits({ keyId: key.id })).toEqual({ remaining: max, refillAt: null })
  })

  it('emits rejected for usage refusals and credits_changed for every balance change, with numbers only', async () => {
    const { keys } = manager()
    const events: KeyEvent[] = []
    keys.on('rejected', (event) => void events.push(event))
    keys.on('credits_changed', (event) => void events.push(event))
    const { key, token } = await keys.create({ name: 'x', environment: 'live', policy: 'tiny', credits: 1 })
    await keys.verify(token)
    await keys.verify(token)
    await keys.addCredits({ keyId: key.id }, 4)
    await keys.setCredits({ keyId: key.id }, 2)
    await keys.setCredits({ keyId: key.id }, 2)
    await keys.update(key.id, { policy: null })
    await keys.setCredits({ keyId: key.id }, 0)
    await keys.verify(token)
    expect(events.map((event) => (event.type === 'rejected' ? event.reason : event.type === 'credits_changed' ? [event.cause, event.previous, event.remaining] : event.type))).toEqual([
      ['set', 0, 1],
      ['verify', 1, 0],
      'rate_limited',
      ['add', 0, 4],
      ['set', 4, 2],
      ['set', 2, 0],
      'usage_exceeded',
    ])
    for (const event of events) expect(JSON.stringify(event)).not.toContain(token.split('_').at(-1)!)
  })
})

describe('limits: when the counters fail', () => {
  it('fails closed by default: verify rejects with a StoreError that names no counter value', async () => {
    const counters = new DownCounters()
    const keys = new KeyManager({ store: new MemoryStore(), limits: { policies: POLICIES, counters } })
    const { token } = await keys.create({ name: 'x', environment: 'live', policy: 'pro' })
    const error = await keys.verify(token).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(StoreError)
    expect((error as StoreError).operation).toBe('consumeUsage')
    expect(String((error as Error).message)).not.toContain('6380')
  })

  it('with failOpen, rate limits let the request through and report the error; credits still fail closed', async () => {
    const counters = new DownCounters()
    const onError = vi.fn()
    const keys = new KeyManager({ store: new MemoryStore(), limits: { policies: POLICIES, counters, failOpen: true, onError } })
    const rateOnly = await keys.create({ name: 'x', environment: 'live', policy: 'pro' })
    expect(await keys.verify(rateOnly.token)).toMatchObject({ valid: true, limits: [], credits: null })
    expect(onError).toHaveBeenCalledOnce()
    expect(onError.mock.calls[0]![0]).toBeInstanceOf(StoreError)
    const metered = await keys.create({ name: 'y', environment: 'live', policy: 'free' })
    await expect(keys.verify(metered.token)).rejects.toThrow(StoreError)
  })

  it('a key created with credits whose balance cannot be written is not left behind', async () => {
    const store = new MemoryStore()
    const keys = new KeyManager({ store, limits: { policies: POLICIES, counters: new DownCounters() } })
    await expect(keys.create({ name: 'x', environment: 'live', credits: 5 })).rejects.toThrow(StoreError)
    expect(store.size).toBe(0)
  })

  it('the taken-back create is in the audit trail, and an idempotent retry of it may create the key', async () => {
    const store = new MemoryStore()
    const counters = new DownCounters()
    const keys = new KeyManager({ store, pepper: 'limits-test-pepper-0123456789', limits: { policies: POLICIES, counters } })
    const input = { name: 'x', environment: 'live', credits: 5, idempotencyKey: 'retry-after-rollback-0001' }
    await expect(keys.create(input)).rejects.toThrow(StoreError)
    const { items } = await keys.audit()
    expect(items.map((entry) => entry.action)).toEqual(['deleted', 'created'])
    expect(items[0]).toMatchObject({ actor: { type: 'system', id: 'keywarden' }, reason: expect.stringContaining('rolled back') })
    // The counters are back: the retry is not refused as a replay of a deleted key.
    const healthy = new KeyManager({ store, pepper: 'limits-test-pepper-0123456789', limits: { policies: POLICIES } })
    const retried = await healthy.create(input)
    expect(retried.key.id).toBe(items[0]!.keyId)
    expect(await healthy.getCredits({ keyId: retried.key.id })).toMatchObject({ remaining: 5 })
  })
})

describe('limits: credits calls', () => {
  it('a key charged to its owner pool reads and tops up that pool; the pool reads the same by owner', async () => {
    const keys = new KeyManager({
      store: new MemoryStore(),
      clock: () => START,
      limits: { policies: { team: { credits: { per: 'owner', refill: { amount: 50, every: 'month' } } } }, defaultPolicy: 'team' },
    })
    const { key, token } = await keys.create({ name: 'x', ownerId: 'u1', tenantId: 't1', environment: 'live' })
    await keys.verify(token, { cost: 10 })
    expect(await keys.getCredits({ keyId: key.id })).toEqual({ remaining: 40, refillAt: new Date(Date.UTC(2026, 1, 1)) })
    expect(await keys.addCredits({ keyId: key.id }, 5)).toEqual({ remaining: 45, refillAt: new Date(Date.UTC(2026, 1, 1)) })
    expect(await keys.getCredits({ ownerId: 'u1', tenantId: 't1' })).toEqual({ remaining: 45, refillAt: new Date(Date.UTC(2026, 1, 1)) })
    expect(await keys.getCredits({ ownerId: 'u1' })).toEqual({ remaining: 50, refillAt: new Date(Date.UTC(2026, 1, 1)) })
  })
})

describe('limits: purgeUsage', () => {
  it('drops spent counter state from the counter store and keeps balances', async () => {
    const { keys, time } = manager()
    const { key, token } = await keys.create({ name: 'x', environment: 'live', policy: 'tiny', credits: 5 })
    await keys.verify(token)
    expect(await keys.purgeUsage()).toBe(0)
    time.advance(3_600_000)
    expect(await keys.purgeUsage()).toBe(1)
    expect(await keys.getCredits({ keyId: key.id })).toMatchObject({ remaining: 4 })
    expect(await keys.verify(token)).toMatchObject({ valid: true, limits: [{ remaining: 0 }] })
  })

  it('is 0 on a counter store that expires state itself', async () => {
    const counters: UsageStore = { consumeUsage: new MemoryStore().consumeUsage, adjustCredits: new MemoryStore().adjustCredits }
    const keys = new KeyManager({ store: new MemoryStore(), limits: { policies: POLICIES, counters } })
    expect(await keys.purgeUsage()).toBe(0)
  })
})
