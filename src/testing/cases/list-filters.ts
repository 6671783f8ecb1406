/**
 * Conformance cases for list's filters: each field filter, the status at `query.now` (revoked > expired >
 * disabled > active; expired when expiresAt <= now) and the expiresWithin window (from < expiresAt <= to).
 */
import type { StoredKey } from '../../store.js'
import { makeRecord, makeRichRecord, T0, type MutableStoredKey } from '../records.js'
import { insertAll, listIds, nextVersion, query, type SuiteContext } from './case-helpers.js'

/** Seven records, created in id order, covering each filter value and null. */
export function filterFixture(): MutableStoredKey[] {
  const rows: [string, string | null, string | null, string, string | null][] = [
    // id    ownerId  tenantId environment type
    ['f01', 'alice', 't1', 'live', 'service'],
    ['f02', 'alice', 't1', 'test', 'personal'],
    ['f03', 'alice', 't2', 'live', null],
    ['f04', 'bob', 't1', 'live', 'service'],
    ['f05', 'bob', null, 'test', 'service'],
    ['f06', null, 't1', 'live', 'service'],
    ['f07', null, null, 'test', null],
  ]
  return rows.map(([id, ownerId, tenantId, environment, type], index) =>
    makeRecord({ id, ownerId, tenantId, environment, type, createdAt: T0 + index }),
  )
}

export function listFilterTests({ test, expect }: SuiteContext): void {
  test('list: without filters returns every record', async (store) => {
    await insertAll(store, filterFixture())
    expect(await listIds(store)).toEqual(['f01', 'f02', 'f03', 'f04', 'f05', 'f06', 'f07'])
  })

  test('list: ownerId filter', async (store) => {
    await insertAll(store, filterFixture())
    expect(await listIds(store, { ownerId: 'alice' })).toEqual(['f01', 'f02', 'f03'])
  })

  test('list: tenantId filter', async (store) => {
    await insertAll(store, filterFixture())
    expect(await listIds(store, { tenantId: 't1' })).toEqual(['f01', 'f02', 'f04', 'f06'])
  })

  test('list: environment filter', async (store) => {
    await insertAll(store, filterFixture())
    expect(await listIds(store, { environment: 'live' })).toEqual(['f01', 'f03', 'f04', 'f06'])
  })

  test('list: type filter', async (store) => {
    await insertAll(store, filterFixture())
    expect(await listIds(store, { type: 'service' })).toEqual(['f01', 'f04', 'f05', 'f06'])
  })

  test('list: combined filters must all match (AND)', async (store) => {
    await insertAll(store, filterFixture())
    expect(await listIds(store, { ownerId: 'alice', environment: 'live' })).toEqual(['f01', 'f03'])
    expect(await listIds(store, { tenantId: 't1', type: 'service' })).toEqual(['f01', 'f04', 'f06'])
    expect(await listIds(store, { ownerId: 'bob', tenantId: 't1', environment: 'live', type: 'service' })).toEqual(['f04'])
    expect(await listIds(store, { ownerId: 'alice', environment: 'test', type: 'service' })).toEqual([])
  })

  test('list: a filter matching nothing returns an empty list', async (store) => {
    await insertAll(store, filterFixture())
    expect(await listIds(store, { ownerId: 'nobody' })).toEqual([])
    expect(await listIds(store, { environment: 'staging' })).toEqual([])
  })

  test('list: limit applies after filtering', async (store) => {
    await insertAll(store, filterFixture())
    expect(await listIds(store, { type: 'service', limit: 2 })).toEqual(['f01', 'f04'])
    expect(await listIds(store, { type: 'service', limit: 2, order: 'desc' })).toEqual(['f06', 'f05'])
  })

  test('list: returns complete records, equal to what get returns', async (store) => {
    const records = [makeRichRecord({ id: 'r1' }), makeRichRecord({ id: 'r2', createdAt: 1_700_000_000_124, metadata: {} })]
    await insertAll(store, records)
    const listed = await store.list(query({ ownerId: 'owner-ü' }))
    expect(listed).toEqual(records)
    expect(listed).toEqual([await store.get('r1'), await store.get('r2')])
  })

  test('list: filters see the latest version of an updated record', async (store) => {
    const original = makeRecord({ id: 'u1', type: 'service' })
    await insertAll(store, [original])
    expect(await store.update(nextVersion(original, { type: 'personal', enabled: false }), 1)).toBe('updated')
    expect(await listIds(store, { type: 'service' })).toEqual([])
    expect(await listIds(store, { type: 'personal', status: 'disabled' })).toEqual(['u1'])
    expect(await listIds(store, { status: 'active' })).toEqual([])
  })
}

const NOW = T0 + 1_000_000

/** Each record with the status the contract gives it at NOW. */
function statusFixture(): { record: MutableStoredKey; status: 'active' | 'disabled' | 'expired' | 'revoked' }[] {
  const rows: [string, Partial<StoredKey>, 'active' | 'disabled' | 'expired' | 'revoked'][] = [
    ['s01', {}, 'active'],
    ['s02', { expiresAt: NOW + 1 }, 'active'],
    ['s03', { enabled: false }, 'disabled'],
    ['s04', { enabled: false, expiresAt: NOW + 1 }, 'disabled'],
    ['s05', { expiresAt: NOW }, 'expired'],
    ['s06', { expiresAt: NOW - 1 }, 'expired'],
    ['s07', { expiresAt: NOW - 1000, enabled: false }, 'expired'],
    ['s08', { revokedAt: NOW - 5 }, 'revoked'],
    ['s09', { revokedAt: NOW - 5, expiresAt: NOW - 10, enabled: false }, 'revoked'],
    ['s10', { revokedAt: NOW + 60_000 }, 'revoked'],
  ]
  return rows.map(([id, changes, status], index) => ({ record: makeRecord({ id, createdAt: T0 + index, ...changes }), status }))
}

export function listStatusTests({ test, expect }: SuiteContext): void {
  for (const status of ['active', 'disabled', 'expired', 'revoked'] as const) {
    test(`list: status ${status}`, async (store) => {
      const fixture = statusFixture()
      await insertAll(store, fixture.map((row) => row.record))
      const expected = fixture.filter((row) => row.status === status).map((row) => row.record.id)
      expect(await listIds(store, { status, now: NOW })).toEqual(expected)
    })
  }

  test('list: expiresAt equal to now is expired, one millisecond later is active', async (store) => {
    await insertAll(store, [makeRecord({ id: 'at-now', expiresAt: NOW }), makeRecord({ id: 'after-now', expiresAt: NOW + 1 })])
    expect(await listIds(store, { status: 'expired', now: NOW })).toEqual(['at-now'])
    expect(await listIds(store, { status: 'active', now: NOW })).toEqual(['after-now'])
  })

  test('list: status is judged at query.now, not the wall clock', async (store) => {
    const farFuture = 4_102_444_800_000
    await insertAll(store, [makeRecord({ id: 'later', expiresAt: farFuture })])
    expect(await listIds(store, { status: 'active', now: farFuture - 1 })).toEqual(['later'])
    expect(await listIds(store, { status: 'expired', now: farFuture })).toEqual(['later'])
    expect(await listIds(store, { status: 'active', now: farFuture })).toEqual([])
  })

  test('list: status combines with other filters', async (store) => {
    await insertAll(store, [
      makeRecord({ id: 'a-on', ownerId: 'alice' }),
      makeRecord({ id: 'a-off', ownerId: 'alice', enabled: false }),
      makeRecord({ id: 'b-on', ownerId: 'bob' }),
    ])
    expect(await listIds(store, { ownerId: 'alice', status: 'active' })).toEqual(['a-on'])
  })
}

const FROM = T0 + 10_000
const TO = T0 + 20_000

export function listExpiresWithinTests({ test, expect }: SuiteContext): void {
  const within = { from: FROM, to: TO }

  test('list: expiresWithin returns non-revoked records with from < expiresAt <= to', async (store) => {
    await insertAll(store, [
      makeRecord({ id: 'w01', expiresAt: FROM - 1, createdAt: T0 + 1 }),
      makeRecord({ id: 'w02', expiresAt: FROM, createdAt: T0 + 2 }),
      makeRecord({ id: 'w03', expiresAt: FROM + 1, createdAt: T0 + 3 }),
      makeRecord({ id: 'w04', expiresAt: FROM + 500, enabled: false, createdAt: T0 + 4 }),
      makeRecord({ id: 'w05', expiresAt: TO - 1, createdAt: T0 + 5 }),
      makeRecord({ id: 'w06', expiresAt: TO, createdAt: T0 + 6 }),
      makeRecord({ id: 'w07', expiresAt: TO + 1, createdAt: T0 + 7 }),
      makeRecord({ id: 'w08', expiresAt: null, createdAt: T0 + 8 }),
      makeRecord({ id: 'w09', expiresAt: FROM + 500, revokedAt: T0, createdAt: T0 + 9 }),
    ])
    expect(await listIds(store, { expiresWithin: within })).toEqual(['w03', 'w04', 'w05', 'w06'])
  })

  test('list: expiresWithin excludes expiresAt exactly at from', async (store) => {
    await insertAll(store, [makeRecord({ id: 'at-from', expiresAt: FROM })])
    expect(await listIds(store, { expiresWithin: within })).toEqual([])
    expect(await listIds(store, { expiresWithin: { from: FROM - 1, to: TO } })).toEqual(['at-from'])
  })

  test('list: expiresWithin includes expiresAt exactly at to', async (store) => {
    await insertAll(store, [makeRecord({ id: 'at-to', expiresAt: TO })])
    expect(await listIds(store, { expiresWithin: within })).toEqual(['at-to'])
    expect(await listIds(store, { expiresWithin: { from: FROM, to: TO - 1 } })).toEqual([])
  })

  test('list: expiresWithin excludes revoked records', async (store) => {
    await insertAll(store, [makeRecord({ id: 'revoked', expiresAt: FROM + 1, revokedAt: T0 })])
    expect(await listIds(store, { expiresWithin: within })).toEqual([])
  })

  test('list: expiresWithin excludes records that never expire', async (store) => {
    await insertAll(store, [makeRecord({ id: 'forever', expiresAt: null })])
    expect(await listIds(store, { expiresWithin: within })).toEqual([])
  })

  test('list: expiresWithin combines with other filters', async (store) => {
    await insertAll(store, [
      makeRecord({ id: 'a-soon', ownerId: 'alice', expiresAt: FROM + 1 }),
      makeRecord({ id: 'b-soon', ownerId: 'bob', expiresAt: FROM + 1 }),
    ])
    expect(await listIds(store, { ownerId: 'alice', expiresWithin: within })).toEqual(['a-soon'])
  })
}
