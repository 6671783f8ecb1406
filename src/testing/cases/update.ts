/** Conformance cases for update: compare-and-set on version, lastUsedAt kept, never re-creating a deleted record. */
import type { UpdateResult } from '../../store.js'
import { makeRecord, makeRichRecord, T0 } from '../records.js'
import { count, insertAll, listIds, nextVersion, type SuiteContext } from './case-helpers.js'

export function updateTests({ test, expect }: SuiteContext): void {
  test('update: the expected version replaces the record and returns updated', async (store) => {
    const original = makeRichRecord({ version: 1, revokedAt: null })
    await insertAll(store, [original])
    const next = nextVersion(original, {
      name: 'renamed',
      description: null,
      type: null,
      scopes: ['only:this'],
      roles: [],
      metadata: { replaced: true, list: [0] },
      hash: 'hmac-sha256$v2$0000',
      previousHash: null,
      previousHashExpiresAt: null,
      expiresAt: 1_800_000_000_321,
      enabled: true,
      revokedAt: 1_700_000_005_005,
      expiryNoticeFor: null,
    })
    expect(await store.update(next, 1)).toBe('updated')
    expect(await store.get(original.id)).toEqual(next)
  })

  test('update: a wrong expected version returns conflict and changes nothing', async (store) => {
    const original = makeRecord({ id: 'cas', version: 3 })
    await insertAll(store, [original])
    const outcomes: [number, UpdateResult][] = []
    for (const expectedVersion of [2, 4, 0]) {
      const next = nextVersion(original, { name: `by ${expectedVersion}`, version: expectedVersion + 1 })
      outcomes.push([expectedVersion, await store.update(next, expectedVersion)])
    }
    expect(outcomes).toEqual([[2, 'conflict'], [4, 'conflict'], [0, 'conflict']])
    expect(await store.get('cas')).toEqual(makeRecord({ id: 'cas', version: 3 }))
  })

  test('update: a version read before another update is stale and conflicts', async (store) => {
    await insertAll(store, [makeRecord({ id: 'cas' })])
    const read = (await store.get('cas'))!
    expect(await store.update(nextVersion(read, { name: 'first' }), read.version)).toBe('updated')
    expect(await store.update(nextVersion(read, { name: 'second' }), read.version)).toBe('conflict')
    expect((await store.get('cas'))?.name).toBe('first')
  })

  test('update: an unknown id returns not_found and creates nothing', async (store) => {
    expect(await store.update(makeRecord({ id: 'ghost', version: 2 }), 1)).toBe('not_found')
    expect(await store.get('ghost')).toBeNull()
    expect(await listIds(store)).toEqual([])
  })

  test('update: a deleted record returns not_found and is not re-created', async (store) => {
    const original = makeRecord({ id: 'gone', ownerId: 'alice' })
    await insertAll(store, [original])
    expect(await store.delete('gone')).toBe(true)
    expect(await store.update(nextVersion(original), 1)).toBe('not_found')
    expect(await store.get('gone')).toBeNull()
    expect(await listIds(store, { ownerId: 'alice' })).toEqual([])
  })

  test('update: keeps the stored lastUsedAt when the record passed in has another', async (store) => {
    const original = makeRecord({ id: 'used' })
    await insertAll(store, [original])
    await store.touch('used', T0 + 500)
    const kept: [number | null, number | null | undefined][] = []
    for (const passed of [null, T0 + 100, T0 + 900]) {
      const current = (await store.get('used'))!
      expect(await store.update(nextVersion(current, { lastUsedAt: passed }), current.version)).toBe('updated')
      kept.push([passed, (await store.get('used'))?.lastUsedAt])
    }
    expect(kept).toEqual([[null, T0 + 500], [T0 + 100, T0 + 500], [T0 + 900, T0 + 500]])
  })

  test('update: keeps a null lastUsedAt when the record passed in has one', async (store) => {
    const original = makeRecord({ id: 'unused' })
    await insertAll(store, [original])
    expect(await store.update(nextVersion(original, { lastUsedAt: T0 + 700 }), 1)).toBe('updated')
    expect((await store.get('unused'))?.lastUsedAt).toBeNull()
  })

  test('update: of 20 parallel updates with the same expected version, exactly one succeeds', async (store) => {
    const original = makeRecord({ id: 'race' })
    await insertAll(store, [original])
    const writers = Array.from({ length: 20 }, (_, i) => nextVersion(original, { name: `writer ${i}` }))
    const results: UpdateResult[] = await Promise.all(writers.map((next) => store.update(next, 1)))
    expect(count(results, 'updated')).toBe(1)
    expect(count(results, 'conflict')).toBe(19)
    const winner = writers[results.indexOf('updated')]
    expect(await store.get('race')).toEqual(winner)
  })
}
