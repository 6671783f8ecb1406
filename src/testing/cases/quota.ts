/**
 * Conformance cases for insert under a quota: counting the owner's non-revoked records within its tenant
 * and inserting as one atomic step. The same ownerId in two tenants, or in none, is three owners.
 */
import type { InsertResult, QuotaCheck } from '../../store.js'
import { makeRecord, T0 } from '../records.js'
import { count, insertAll, listIds, nextVersion, ownedBy, query, type SuiteContext } from './case-helpers.js'

export function quotaTests({ test, expect }: SuiteContext): void {
  test('quota: inserts while the owner holds fewer non-revoked records than the limit', async (store) => {
    await insertAll(store, ownedBy('alice', ['a1']))
    expect(await store.insert(makeRecord({ id: 'a2', ownerId: 'alice' }), { ownerId: 'alice', tenantId: null, limit: 2 })).toBe('inserted')
    expect(await listIds(store, { ownerId: 'alice' })).toEqual(['a1', 'a2'])
  })

  test('quota: refuses an insert that would exceed the limit and writes nothing', async (store) => {
    await insertAll(store, ownedBy('alice', ['a1', 'a2']))
    expect(await store.insert(makeRecord({ id: 'a3', ownerId: 'alice' }), { ownerId: 'alice', tenantId: null, limit: 2 })).toBe('quota_exceeded')
    expect(await store.get('a3')).toBeNull()
    expect(await listIds(store, { ownerId: 'alice' })).toEqual(['a1', 'a2'])
  })

  test('quota: revoked records do not count', async (store) => {
    await insertAll(store, ownedBy('alice', ['r1', 'r2'], { revokedAt: T0 }))
    expect(await store.insert(makeRecord({ id: 'a1', ownerId: 'alice' }), { ownerId: 'alice', tenantId: null, limit: 1 })).toBe('inserted')
  })

  test('quota: disabled and expired records still count', async (store) => {
    await insertAll(store, [
      makeRecord({ id: 'd1', ownerId: 'alice', enabled: false }),
      makeRecord({ id: 'e1', ownerId: 'alice', expiresAt: T0 - 1 }),
    ])
    expect(await store.insert(makeRecord({ id: 'a1', ownerId: 'alice' }), { ownerId: 'alice', tenantId: null, limit: 2 })).toBe('quota_exceeded')
  })

  test("quota: other owners' records and ownerless records do not count", async (store) => {
    await insertAll(store, [...ownedBy('bob', ['b1', 'b2', 'b3']), ...ownedBy(null, ['n1', 'n2'])])
    expect(await store.insert(makeRecord({ id: 'a1', ownerId: 'alice' }), { ownerId: 'alice', tenantId: null, limit: 1 })).toBe('inserted')
  })

  test('quota: a limit of 0 refuses the first record', async (store) => {
    expect(await store.insert(makeRecord({ id: 'a1', ownerId: 'alice' }), { ownerId: 'alice', tenantId: null, limit: 0 })).toBe('quota_exceeded')
    expect(await store.get('a1')).toBeNull()
  })

  test('quota: a null quota inserts whatever the owner holds', async (store) => {
    await insertAll(store, ownedBy('alice', ['a1', 'a2', 'a3']))
    expect(await store.insert(makeRecord({ id: 'a4', ownerId: 'alice' }), null)).toBe('inserted')
  })

  test('quota: revoking a record through update frees its slot', async (store) => {
    await insertAll(store, ownedBy('alice', ['a1', 'a2']))
    const quota = { ownerId: 'alice', tenantId: null, limit: 2 }
    expect(await store.insert(makeRecord({ id: 'a3', ownerId: 'alice' }), quota)).toBe('quota_exceeded')
    const a1 = (await store.get('a1'))!
    expect(await store.update(nextVersion(a1, { revokedAt: T0 + 5 }), a1.version)).toBe('updated')
    expect(await store.insert(makeRecord({ id: 'a3', ownerId: 'alice' }), quota)).toBe('inserted')
  })

  test('quota: deleting a record frees its slot', async (store) => {
    await insertAll(store, ownedBy('alice', ['a1', 'a2']))
    const quota = { ownerId: 'alice', tenantId: null, limit: 2 }
    expect(await store.delete('a1')).toBe(true)
    expect(await store.insert(makeRecord({ id: 'a3', ownerId: 'alice' }), quota)).toBe('inserted')
  })

  test('quota: of 50 parallel inserts against a limit of 2, exactly 2 succeed', async (store) => {
    const candidates = Array.from({ length: 50 }, (_, i) => makeRecord({ id: `par${String(i).padStart(2, '0')}`, ownerId: 'alice' }))
    const results: InsertResult[] = await Promise.all(candidates.map((record) => store.insert(record, { ownerId: 'alice', tenantId: null, limit: 2 })))
    expect(count(results, 'inserted')).toBe(2)
    expect(count(results, 'quota_exceeded')).toBe(48)
    const winners = candidates.filter((_, i) => results[i] === 'inserted').map((record) => record.id)
    expect((await listIds(store, { ownerId: 'alice' })).sort()).toEqual(winners.sort())
  })
}

function aliceIn(tenantId: string | null, limit: number): QuotaCheck {
  return { ownerId: 'alice', tenantId, limit }
}

export function tenantQuotaTests({ test, expect }: SuiteContext): void {
  test('quota: the same owner in two tenants and in no tenant has three independent quotas', async (store) => {
    await insertAll(store, ownedBy('alice', ['t1a', 't1b'], { tenantId: 't1' }))
    const outcomes: Record<string, InsertResult> = {}
    for (const [tenantId, prefix] of [['t2', 't2'], [null, 'none']] as const) {
      for (const suffix of ['a', 'b', 'c']) {
        const record = makeRecord({ id: `${prefix}${suffix}`, ownerId: 'alice', tenantId })
        outcomes[record.id] = await store.insert(record, aliceIn(tenantId, 2))
      }
    }
    outcomes['t1c'] = await store.insert(makeRecord({ id: 't1c', ownerId: 'alice', tenantId: 't1' }), aliceIn('t1', 2))
    // Six keys elsewhere, none in t3: a limit of 1 there still has room.
    outcomes['t3a'] = await store.insert(makeRecord({ id: 't3a', ownerId: 'alice', tenantId: 't3' }), aliceIn('t3', 1))
    expect(outcomes).toEqual({
      t2a: 'inserted',
      t2b: 'inserted',
      t2c: 'quota_exceeded',
      nonea: 'inserted',
      noneb: 'inserted',
      nonec: 'quota_exceeded',
      t1c: 'quota_exceeded',
      t3a: 'inserted',
    })
    expect((await listIds(store, { ownerId: 'alice' })).sort()).toEqual(['nonea', 'noneb', 't1a', 't1b', 't2a', 't2b', 't3a'])
  })

  test('quota: revoking a key in one tenant frees a slot only in that tenant', async (store) => {
    await insertAll(store, [
      ...ownedBy('alice', ['t1a', 't1b'], { tenantId: 't1' }),
      ...ownedBy('alice', ['t2a', 't2b'], { tenantId: 't2' }),
      ...ownedBy('alice', ['none-a', 'none-b']),
    ])
    const t1a = (await store.get('t1a'))!
    expect(await store.update(nextVersion(t1a, { revokedAt: T0 + 5 }), t1a.version)).toBe('updated')
    const outcomes = {
      t2c: await store.insert(makeRecord({ id: 't2c', ownerId: 'alice', tenantId: 't2' }), aliceIn('t2', 2)),
      'none-c': await store.insert(makeRecord({ id: 'none-c', ownerId: 'alice' }), aliceIn(null, 2)),
      t1c: await store.insert(makeRecord({ id: 't1c', ownerId: 'alice', tenantId: 't1' }), aliceIn('t1', 2)),
      t1d: await store.insert(makeRecord({ id: 't1d', ownerId: 'alice', tenantId: 't1' }), aliceIn('t1', 2)),
    }
    expect(outcomes).toEqual({ t2c: 'quota_exceeded', 'none-c': 'quota_exceeded', t1c: 'inserted', t1d: 'quota_exceeded' })
  })

  test('quota: of 48 parallel inserts for one owner in two tenants and in none, against a limit of 2, exactly 2 succeed in each', async (store) => {
    const tenants = ['t1', 't2', null] as const
    const candidates = Array.from({ length: 48 }, (_, i) =>
      makeRecord({ id: `par${String(i).padStart(2, '0')}`, ownerId: 'alice', tenantId: tenants[i % tenants.length] ?? null }),
    )
    const results: InsertResult[] = await Promise.all(candidates.map((record) => store.insert(record, aliceIn(record.tenantId, 2))))
    expect(count(results, 'inserted')).toBe(6)
    expect(count(results, 'quota_exceeded')).toBe(42)
    const stored = await store.list(query({ ownerId: 'alice' }))
    const winnersIn = (tenantId: string | null) =>
      candidates.filter((record, i) => record.tenantId === tenantId && results[i] === 'inserted').map((record) => record.id).sort()
    const storedIn = (tenantId: string | null) => stored.filter((record) => record.tenantId === tenantId).map((record) => record.id).sort()
    // One count per tenant (t1, t2, none), so a failure shows which tenant got too many.
    expect(tenants.map((tenantId) => winnersIn(tenantId).length)).toEqual([2, 2, 2])
    expect(tenants.map(storedIn)).toEqual(tenants.map(winnersIn))
  })
}
