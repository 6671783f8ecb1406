/**
 * The KeyManager's promises on the store under test: the races and boundaries the issue tracker names,
 * run through the public API (registered by describeKeyStore after the store's own cases).
 */
import { KeyManager, QuotaExceededError, type KeyStore } from '../../index.js'
import { T0 } from '../records.js'
import type { SuiteContext } from './case-helpers.js'

/** A KeyManager on the store under test, with a clock the case sets (`setNow`) or moves (`advance`). */
export function managerOn(store: KeyStore, overrides: Partial<ConstructorParameters<typeof KeyManager>[0]> = {}) {
  let now = T0
  const keys = new KeyManager({
    store,
    prefix: 'conf',
    pepper: 'conformance-pepper-0123456789',
    roles: { reader: ['data:read'] },
    clock: () => now,
    ...overrides,
  })
  return {
    keys,
    setNow: (ms: number) => {
      now = ms
    },
    advance: (ms: number) => (now += ms),
  }
}

export function keyManagerScenarios({ test, expect }: SuiteContext): void {
  test('manager: 50 parallel creates against a quota of 2 give 2 keys and 48 QuotaExceededErrors', async (store) => {
    const { keys } = managerOn(store, { maxKeysPerOwner: 2 })
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => keys.create({ name: `k${i}`, ownerId: 'racer', environment: 'live' })),
    )
    const refused = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []))
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(2)
    expect(refused).toHaveLength(48)
    for (const reason of refused) expect(reason).toBeInstanceOf(QuotaExceededError)
    expect((await keys.list({ ownerId: 'racer' })).items).toHaveLength(2)
  })

  test('manager: a disable racing a rotate loses nothing', async (store) => {
    const { keys } = managerOn(store)
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    const [rotated] = await Promise.all([keys.rotate(key.id), keys.disable(key.id)])
    expect((await keys.get(key.id))!.enabled).toBe(false)
    expect(await keys.verify(rotated.token)).toMatchObject({ valid: false, reason: 'disabled' })
    await keys.enable(key.id)
    expect((await keys.verify(rotated.token)).valid).toBe(true)
  })

  test('manager: rotate racing rotate leaves exactly one current secret and at most one in grace', async (store) => {
    const { keys } = managerOn(store)
    const { key, token: original } = await keys.create({ name: 'x', environment: 'live' })
    const rotations = await Promise.all(Array.from({ length: 8 }, () => keys.rotate(key.id, { gracePeriod: '1h' })))
    const tokens = [original, ...rotations.map((rotation) => rotation.token)]
    const valid = (await Promise.all(tokens.map((token) => keys.verify(token)))).filter((result) => result.valid)
    expect(valid.length).toBeGreaterThanOrEqual(1)
    expect(valid.length).toBeLessThanOrEqual(2)
    // Without grace, exactly one secret works afterwards.
    const last = await keys.rotate(key.id)
    const after = await Promise.all([...tokens, last.token].map(async (token) => (await keys.verify(token)).valid))
    expect(after.filter(Boolean)).toHaveLength(1)
    expect(after[after.length - 1]).toBe(true)
  })

  test('manager: a key deleted while updates race it never comes back', async (store) => {
    const { keys } = managerOn(store)
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    await Promise.allSettled([keys.update(key.id, { name: 'y' }), keys.delete(key.id), keys.disable(key.id), keys.rotate(key.id)])
    expect(await keys.get(key.id)).toBeNull()
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'unknown_key' })
  })

  test('manager: a key is valid at expiresAt - 1 ms and expired at expiresAt (injected clock)', async (store) => {
    const { keys, setNow } = managerOn(store)
    const { key, token } = await keys.create({ name: 'x', environment: 'live', expiresIn: '1h' })
    setNow(key.expiresAt!.getTime() - 1)
    expect((await keys.verify(token)).valid).toBe(true)
    setNow(key.expiresAt!.getTime())
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'expired' })
    expect((await keys.list({ status: 'expired' })).items.map((item) => item.id)).toEqual([key.id])
  })

  test('manager: a revoked key never verifies again and leaves the quota', async (store) => {
    const { keys } = managerOn(store, { maxKeysPerOwner: 1 })
    const { key, token } = await keys.create({ name: 'x', ownerId: 'o', environment: 'live', roles: ['reader'] })
    expect((await keys.verify(token, { scopes: ['data:read'] })).valid).toBe(true)
    await keys.revoke(key.id)
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })
    expect(await keys.create({ name: 'y', ownerId: 'o', environment: 'live' })).toBeDefined()
  })

  test('manager: the same owner has a quota of its own in each tenant', async (store) => {
    const { keys } = managerOn(store, { maxKeysPerOwner: 1 })
    const create = (tenantId: string | null, name: string) => keys.create({ name, ownerId: 'o', environment: 'live', ...(tenantId === null ? {} : { tenantId }) })
    const tenants = ['t1', 't2', null] as const
    const first = new Map<string | null, string>()
    for (const tenantId of tenants) first.set(tenantId, (await create(tenantId, 'first')).key.id)
    const refusals = await Promise.all(tenants.map((tenantId) => create(tenantId, 'again').catch((error: unknown) => error)))
    for (const refused of refusals) expect(refused).toBeInstanceOf(QuotaExceededError)
    expect(refusals.map((refused) => (refused as QuotaExceededError).tenantId)).toEqual([...tenants])
    // Revoking frees a slot in its own tenant only.
    await keys.revoke(first.get('t1')!)
    expect(await create('t2', 'after revoke').catch((error: unknown) => error)).toBeInstanceOf(QuotaExceededError)
    expect(await create(null, 'after revoke').catch((error: unknown) => error)).toBeInstanceOf(QuotaExceededError)
    expect((await create('t1', 'after revoke')).key.tenantId).toBe('t1')
  })
}
