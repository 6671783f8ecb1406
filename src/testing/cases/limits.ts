/**
 * Rate limits and credits through the KeyManager, on the store under test: exactness under
 * concurrency (also across two KeyManagers), order of checks, shared pools, windows and refills.
 */
import { KeyManager, type KeyManagerOptions, type KeyStore, type VerifyResult } from '../../index.js'
import type { LimitsOptions } from '../../limits/config.js'
import { T0 } from '../records.js'
import { count, type SuiteContext } from './case-helpers.js'

/** Midnight UTC after T0, so day windows are easy to reason about. */
const MIDNIGHT = T0 - (T0 % 86_400_000) + 86_400_000

const POLICIES: LimitsOptions['policies'] = {
  fifty: { rate: [{ name: 'hourly', limit: 50, window: '1h' }] },
  daily: { rate: [{ name: 'daily', limit: 3, window: '1d', algorithm: 'fixed-window' }] },
  burst: { rate: [{ name: 'burst', limit: 10, window: '1s' }] },
  metered: { rate: [{ name: 'minute', limit: 2, window: '1m', algorithm: 'fixed-window' }], credits: { initial: 10 } },
  owners: { rate: [{ name: 'shared', limit: 2, window: '1h', per: 'owner' }], credits: { per: 'owner', initial: 3 } },
  tenants: { rate: [{ name: 'shared', limit: 2, window: '1h', per: 'tenant' }] },
  monthly: { credits: { refill: { amount: 2, every: 'month', day: 1 } } },
  rolling: { credits: { refill: { amount: 2, interval: '1d' } } },
}

function managerOn(store: KeyStore, overrides: Partial<KeyManagerOptions> = {}, start = T0) {
  let now = start
  const keys = new KeyManager({ store, prefix: 'conf', roles: { reader: ['data:read'] }, clock: () => now, limits: { policies: POLICIES }, ...overrides })
  return { keys, setNow: (ms: number) => void (now = ms) }
}

const passed = (results: readonly VerifyResult[]) => count(results.map((result) => result.valid), true)

export function limitsScenarios({ test, expect }: SuiteContext): void {
  test('limits: 200 concurrent verifies against a limit of 50 let exactly 50 through, also split over two KeyManagers', async (store) => {
    const first = managerOn(store).keys
    const second = managerOn(store).keys
    for (const split of [false, true]) {
      const { token } = await first.create({ name: 'racer', environment: 'live', policy: 'fifty' })
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (split && i % 2 === 1 ? second : first).verify(token)))
      expect(passed(results)).toBe(50)
      expect(count(results.map((result) => (result.valid ? null : result.reason)), 'rate_limited')).toBe(150)
    }
  })

  test('limits: 100 concurrent verifies of cost 3 against 100 credits succeed exactly 33 times', async (store) => {
    const { keys } = managerOn(store)
    const { key, token } = await keys.create({ name: 'payg', environment: 'live', credits: 100 })
    const results = await Promise.all(Array.from({ length: 100 }, () => keys.verify(token, { cost: 3 })))
    expect(passed(results)).toBe(33)
    expect(await keys.getCredits({ keyId: key.id })).toEqual({ remaining: 1, refillAt: null })
  })

  test('limits: a scope failure counts nowhere and a rate-limited request spends no credit', async (store) => {
    const { keys } = managerOn(store)
    const { key, token } = await keys.create({ name: 'm', environment: 'live', policy: 'metered', roles: ['reader'] })
    expect(await keys.verify(token, { scopes: ['data:write'] })).toMatchObject({ valid: false, reason: 'insufficient_scope' })
    const first = await keys.verify(token, { scopes: ['data:read'] })
    expect(first).toMatchObject({ valid: true, credits: { remaining: 9 } })
    expect(first.valid && first.limits.map((limit) => limit.remaining)).toEqual([1])
    expect((await keys.verify(token, { cost: 2 })).valid).toBe(false)
    expect(await keys.verify(token)).toMatchObject({ valid: true, credits: { remaining: 8 } })
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'rate_limited', violated: ['minute'] })
    expect(await keys.getCredits({ keyId: key.id })).toMatchObject({ remaining: 8 })
  })

  test('limits: the policy is resolved at verify time, so an update reaches the key on its next verify', async (store) => {
    const { keys } = managerOn(store)
    const { key, token } = await keys.create({ name: 'p', environment: 'live', policy: 'daily' })
    for (let i = 0; i < 3; i++) expect((await keys.verify(token)).valid).toBe(true)
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'rate_limited' })
    expect((await keys.update(key.id, { policy: 'fifty' })).policy).toBe('fifty')
    expect(await keys.verify(token)).toMatchObject({ valid: true, limits: [{ policy: 'fifty', name: 'hourly', remaining: 49 }] })
    // A KeyManager whose configuration gives `daily` more room applies it to the same stored key.
    await keys.update(key.id, { policy: 'daily' })
    const roomier = managerOn(store, { limits: { policies: { ...POLICIES, daily: { rate: [{ name: 'daily', limit: 5, window: '1d', algorithm: 'fixed-window' }] } } } }).keys
    expect(await roomier.verify(token)).toMatchObject({ valid: true, limits: [{ name: 'daily', limit: 5, remaining: 1 }] })
    await keys.update(key.id, { policy: null })
    expect(await keys.verify(token)).toMatchObject({ valid: true, limits: [], credits: null })
  })

  test('limits: per owner and per tenant share one counter and one pool among all their keys', async (store) => {
    const { keys } = managerOn(store)
    const a = await keys.create({ name: 'a', ownerId: 'u1', tenantId: 't1', environment: 'live', policy: 'owners' })
    const b = await keys.create({ name: 'b', ownerId: 'u1', tenantId: 't1', environment: 'live', policy: 'owners' })
    const otherTenant = await keys.create({ name: 'c', ownerId: 'u1', tenantId: 't2', environment: 'live', policy: 'owners' })
    expect((await keys.verify(a.token)).valid).toBe(true)
    expect(await keys.verify(b.token)).toMatchObject({ valid: true, limits: [{ remaining: 0 }], credits: { remaining: 1 } })
    expect(await keys.verify(a.token)).toMatchObject({ valid: false, reason: 'rate_limited' })
    expect((await keys.verify(otherTenant.token)).valid).toBe(true)
    expect(await keys.getCredits({ ownerId: 'u1', tenantId: 't1', policy: 'owners' })).toMatchObject({ remaining: 1 })
    expect(await keys.getCredits({ keyId: b.key.id })).toMatchObject({ remaining: 1 })

    const t1 = await keys.create({ name: 'x', ownerId: 'u1', tenantId: 'acme', environment: 'live', policy: 'tenants' })
    const t2 = await keys.create({ name: 'y', ownerId: 'u2', tenantId: 'acme', environment: 'live', policy: 'tenants' })
    expect((await keys.verify(t1.token)).valid).toBe(true)
    expect((await keys.verify(t2.token)).valid).toBe(true)
    expect(await keys.verify(t1.token)).toMatchObject({ valid: false, reason: 'rate_limited' })
  })

  test('limits: a fixed window resets at midnight UTC and a token bucket gives an exact retryAfterMs', async (store) => {
    const { keys, setNow } = managerOn(store, {}, MIDNIGHT - 10_000)
    const daily = await keys.create({ name: 'd', environment: 'live', policy: 'daily' })
    for (let i = 0; i < 3; i++) await keys.verify(daily.token)
    expect(await keys.verify(daily.token)).toMatchObject({ reason: 'rate_limited', retryAfterMs: 10_000 })
    const refused = await keys.verify(daily.token)
    expect(!refused.valid && refused.reason === 'rate_limited' && refused.limits[0]!.resetAt).toEqual(new Date(MIDNIGHT))
    setNow(MIDNIGHT)
    expect(await keys.verify(daily.token)).toMatchObject({ valid: true, limits: [{ remaining: 2 }] })

    const burst = await keys.create({ name: 'b', environment: 'live', policy: 'burst' })
    for (let i = 0; i < 10; i++) expect((await keys.verify(burst.token)).valid).toBe(true)
    // 10 per second: the next token is 100 ms away; 3 tokens are 300 ms away.
    expect(await keys.verify(burst.token)).toMatchObject({ reason: 'rate_limited', retryAfterMs: 100 })
    expect(await keys.verify(burst.token, { cost: 3 })).toMatchObject({ reason: 'rate_limited', retryAfterMs: 300 })
    setNow(MIDNIGHT + 299)
    expect((await keys.verify(burst.token, { cost: 3 })).valid).toBe(false)
    setNow(MIDNIGHT + 300)
    expect((await keys.verify(burst.token, { cost: 3 })).valid).toBe(true)
  })

  test('limits: credits refill lazily, on an interval from creation or a calendar day in UTC, and refillAt says when', async (store) => {
    const start = Date.UTC(2026, 0, 20, 12)
    const { keys, setNow } = managerOn(store, {}, start)
    const monthly = await keys.create({ name: 'm', environment: 'live', policy: 'monthly' })
    const rolling = await keys.create({ name: 'r', environment: 'live', policy: 'rolling' })
    for (const { token } of [monthly, rolling]) {
      expect((await keys.verify(token, { cost: 2 })).valid).toBe(true)
      expect((await keys.verify(token)).valid).toBe(false)
    }
    expect(await keys.getCredits({ keyId: monthly.key.id })).toEqual({ remaining: 0, refillAt: new Date(Date.UTC(2026, 1, 1)) })
    expect(await keys.getCredits({ keyId: rolling.key.id })).toEqual({ remaining: 0, refillAt: new Date(start + 86_400_000) })
    expect(await keys.verify(monthly.token)).toMatchObject({ reason: 'usage_exceeded', credits: { remaining: 0, refillAt: new Date(Date.UTC(2026, 1, 1)) } })
    setNow(start + 86_400_000)
    expect(await keys.verify(rolling.token)).toMatchObject({ valid: true, credits: { remaining: 1 } })
    expect((await keys.verify(monthly.token)).valid).toBe(false)
    setNow(Date.UTC(2026, 1, 1))
    expect(await keys.verify(monthly.token)).toMatchObject({ valid: true, credits: { remaining: 1 } })
    expect(await keys.getCredits({ keyId: monthly.key.id })).toEqual({ remaining: 1, refillAt: new Date(Date.UTC(2026, 2, 1)) })
  })

  test('limits: consume false checks without moving a counter, a credit or lastUsedAt', async (store) => {
    const { keys } = managerOn(store)
    const { key, token } = await keys.create({ name: 'c', environment: 'live', policy: 'metered' })
    for (let i = 0; i < 5; i++) expect(await keys.verify(token, { consume: false })).toMatchObject({ valid: true, credits: { remaining: 9 }, limits: [{ remaining: 1 }] })
    await keys.flush()
    expect((await keys.get(key.id))!.lastUsedAt).toBeNull()
    expect(await keys.getCredits({ keyId: key.id })).toMatchObject({ remaining: 10 })
    expect(await keys.verify(token, { cost: 0 })).toMatchObject({ valid: true, credits: { remaining: 10 }, limits: [{ remaining: 2 }] })
  })

  test('limits: addCredits and setCredits change a balance atomically and never below zero', async (store) => {
    const { keys } = managerOn(store)
    const { key, token } = await keys.create({ name: 'c', environment: 'live' })
    expect(await keys.getCredits({ keyId: key.id })).toBeNull()
    await Promise.all(Array.from({ length: 20 }, () => keys.addCredits({ keyId: key.id }, 5)))
    expect(await keys.getCredits({ keyId: key.id })).toEqual({ remaining: 100, refillAt: null })
    expect(await keys.addCredits({ keyId: key.id }, -1000)).toEqual({ remaining: 0, refillAt: null })
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'usage_exceeded' })
    expect(await keys.setCredits({ keyId: key.id }, 1)).toMatchObject({ remaining: 1 })
    expect(await keys.verify(token)).toMatchObject({ valid: true, credits: { remaining: 0 } })
    expect(await keys.setCredits({ tenantId: 'acme' }, 7)).toEqual({ remaining: 7, refillAt: null })
    expect(await keys.getCredits({ tenantId: 'acme' })).toEqual({ remaining: 7, refillAt: null })
  })
}
