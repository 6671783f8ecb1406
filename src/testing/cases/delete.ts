/** Conformance cases for delete, alone and racing an update. */
import { makeRecord } from '../records.js'
import { insertAll, listIds, nextVersion, ownedBy, query, type SuiteContext } from './case-helpers.js'

export function deleteTests({ test, expect }: SuiteContext): void {
  test('delete: returns true for an existing record, then false', async (store) => {
    await insertAll(store, [makeRecord({ id: 'del' })])
    expect(await store.delete('del')).toBe(true)
    expect(await store.delete('del')).toBe(false)
  })

  test('delete: an unknown id returns false', async (store) => {
    await insertAll(store, [makeRecord({ id: 'kept' })])
    expect(await store.delete('unknown')).toBe(false)
    expect(await store.get('kept')).not.toBeNull()
  })

  test('delete: get returns null and list omits the record afterwards', async (store) => {
    await insertAll(store, [makeRecord({ id: 'del', ownerId: 'alice', tenantId: 't1', type: 'service' })])
    await store.delete('del')
    expect(await store.get('del')).toBeNull()
    expect(await listIds(store)).toEqual([])
    expect(await listIds(store, { ownerId: 'alice', tenantId: 't1', type: 'service', status: 'active' })).toEqual([])
  })

  test('delete: leaves other records untouched', async (store) => {
    const records = ownedBy('alice', ['d1', 'd2', 'd3'])
    await insertAll(store, records)
    await store.delete('d2')
    expect(await store.list(query())).toEqual([records[0], records[2]])
  })

  test('delete: a deleted id can be inserted again', async (store) => {
    await insertAll(store, [makeRecord({ id: 'again', name: 'first' })])
    await store.delete('again')
    expect(await store.insert(makeRecord({ id: 'again', name: 'second' }), null)).toBe('inserted')
    expect((await store.get('again'))?.name).toBe('second')
  })

  test('delete: racing an update (delete issued first) leaves no record', async (store) => {
    const original = makeRecord({ id: 'race', ownerId: 'alice' })
    await insertAll(store, [original])
    const [deleted, updated] = await Promise.all([store.delete('race'), store.update(nextVersion(original), 1)])
    expect(deleted).toBe(true)
    expect(['updated', 'not_found']).toContain(updated)
    expect(await store.get('race')).toBeNull()
    expect(await listIds(store, { ownerId: 'alice' })).toEqual([])
  })

  test('delete: racing an update (update issued first) leaves no record', async (store) => {
    const original = makeRecord({ id: 'race', ownerId: 'alice' })
    await insertAll(store, [original])
    const [updated, deleted] = await Promise.all([store.update(nextVersion(original), 1), store.delete('race')])
    expect(deleted).toBe(true)
    expect(['updated', 'not_found']).toContain(updated)
    expect(await store.get('race')).toBeNull()
    expect(await listIds(store, { ownerId: 'alice' })).toEqual([])
  })
}
