/**
 * Conformance cases for insert and get: exact round trips, unknown and taken IDs, and isolation (callers
 * can neither change what is stored nor be changed by it).
 */
import type { StoredKey } from '../../store.js'
import { makeRecord, makeRichRecord, type MutableStoredKey } from '../records.js'
import { insertAll, listIds, nextVersion, query, type SuiteContext } from './case-helpers.js'

export function insertAndGetTests({ test, expect }: SuiteContext): void {
  test('insert/get: a round trip preserves every field', async (store) => {
    const record = makeRichRecord()
    expect(await store.insert(record, null)).toBe('inserted')
    expect(await store.get(record.id)).toEqual(makeRichRecord())
  })

  test('insert/get: a round trip preserves nulls, empty lists, empty metadata and enabled true', async (store) => {
    await insertAll(store, [makeRecord({ id: 'plain' })])
    expect(await store.get('plain')).toEqual(makeRecord({ id: 'plain' }))
  })

  test('insert/get: metadata keeps every JSON type, unicode and large integers', async (store) => {
    const metadata = makeRichRecord().metadata
    await insertAll(store, [makeRecord({ id: 'meta', metadata })])
    const got = await store.get('meta')
    expect(got?.metadata).toEqual(metadata)
    expect(got?.metadata['large']).toBe(Number.MAX_SAFE_INTEGER)
    expect(got?.metadata['label']).toBe('héllo wörld 👋')
  })

  test('insert/get: instants keep millisecond precision', async (store) => {
    const instants = {
      createdAt: 1_700_000_000_123,
      updatedAt: 1_700_000_000_999,
      expiresAt: 1_700_000_000_001,
      lastUsedAt: 1_700_000_000_500,
      revokedAt: 1_700_000_000_777,
      previousHashExpiresAt: 4_102_444_800_001,
      expiryNoticeFor: 1_700_000_000_001,
    }
    await insertAll(store, [makeRecord({ id: 'timed', ...instants })])
    const got = await store.get('timed')
    expect(got).not.toBeNull()
    // Compared as one object, so a failure names the field that drifted.
    const kept = Object.fromEntries(Object.keys(instants).map((field) => [field, got?.[field as keyof typeof instants]]))
    expect(kept).toEqual(instants)
  })

  test('get: an unknown id returns null', async (store) => {
    await insertAll(store, [makeRecord({ id: 'known' })])
    expect(await store.get('unknown')).toBeNull()
  })

  test('insert: an existing id returns id_taken and leaves the original unchanged', async (store) => {
    await insertAll(store, [makeRecord({ id: 'dup', name: 'original' })])
    const intruder = makeRichRecord({ id: 'dup', name: 'intruder', version: 1 })
    expect(await store.insert(intruder, null)).toBe('id_taken')
    expect(await store.get('dup')).toEqual(makeRecord({ id: 'dup', name: 'original' }))
    expect(await listIds(store)).toEqual(['dup'])
  })

  test('insert/get: ids are case-sensitive', async (store) => {
    await insertAll(store, [makeRecord({ id: 'keyAb', name: 'mixed' }), makeRecord({ id: 'keyab', name: 'lower' })])
    expect((await store.get('keyAb'))?.name).toBe('mixed')
    expect((await store.get('keyab'))?.name).toBe('lower')
    expect(await store.get('KEYAB')).toBeNull()
  })

  test('getForVerify, where a store has it: never older than the store\'s own completed writes', async (store) => {
    const verifyRead = store.getForVerify?.bind(store)
    if (verifyRead === undefined) return
    expect(await verifyRead('vr')).toBeNull()
    await insertAll(store, [makeRichRecord({ id: 'vr' })])
    expect(await verifyRead('vr')).toEqual(makeRichRecord({ id: 'vr' }))
    const stored = await store.get('vr')
    if (stored === null) throw new Error('setup: the inserted record is missing')
    expect(await store.update(nextVersion(stored, { name: 'renamed', revokedAt: stored.createdAt + 5 }), stored.version)).toBe('updated')
    expect(await verifyRead('vr')).toMatchObject({ name: 'renamed', revokedAt: stored.createdAt + 5, version: stored.version + 1 })
    expect(await verifyRead('vr', { changed: true })).toEqual(await store.get('vr'))
    expect(await store.delete('vr')).toBe(true)
    expect(await verifyRead('vr')).toBeNull()
  })

  test('getSync, where a store has it: answers at once exactly what get answers, through every kind of write', async (store) => {
    const readNow = store.getSync?.bind(store)
    if (readNow === undefined) return
    // A value, not a promise: verify uses it without awaiting.
    expect(readNow('gs')).toBeNull()
    await insertAll(store, [makeRichRecord({ id: 'gs' }), makeRecord({ id: 'gs-plain' })])
    expect(readNow('gs')).toEqual(makeRichRecord({ id: 'gs' }))
    expect(readNow('gs-plain')).toEqual(makeRecord({ id: 'gs-plain' }))
    expect(readNow('gs')).toEqual(await store.get('gs'))
    const stored = await store.get('gs')
    if (stored === null) throw new Error('setup: the inserted record is missing')
    expect(await store.update(nextVersion(stored, { name: 'renamed', enabled: false }), stored.version)).toBe('updated')
    expect(readNow('gs')).toMatchObject({ name: 'renamed', enabled: false, version: stored.version + 1 })
    await store.touch('gs', stored.createdAt + 60_000)
    expect(readNow('gs')).toMatchObject({ lastUsedAt: stored.createdAt + 60_000 })
    expect(readNow('gs')).toEqual(await store.get('gs'))
    expect(await store.delete('gs')).toBe(true)
    expect(readNow('gs')).toBeNull()
    expect(readNow('GS-PLAIN')).toBeNull()
  })
}

function isolationRecord(): MutableStoredKey {
  return makeRecord({ id: 'iso', name: 'original', scopes: ['a'], metadata: { label: 'original', nested: { list: [1, 2] } } })
}

type LooseRecord = { name: string; version: number; scopes: string[]; metadata: { label: unknown; nested: { list: unknown[] } } }

/** Tries to change a record in place. A store may hand out frozen records, so each attempt may throw. */
function tryToMutate(record: StoredKey): void {
  const target = record as unknown as LooseRecord
  const attempts = [
    () => (target.name = 'mutated'),
    () => (target.version = 99),
    () => target.scopes.push('mutated'),
    () => (target.metadata.label = 'mutated'),
    () => target.metadata.nested.list.push('mutated'),
  ]
  for (const attempt of attempts) {
    try {
      attempt()
    } catch {
      // Frozen: the store protects itself this way.
    }
  }
}

export function isolationTests({ test, expect }: SuiteContext): void {
  test('isolation: changing the inserted object after insert does not change the stored record', async (store) => {
    const record = isolationRecord()
    await insertAll(store, [record])
    tryToMutate(record)
    expect(await store.get('iso')).toEqual(isolationRecord())
  })

  test('isolation: changing a record returned by get does not change the stored record', async (store) => {
    await insertAll(store, [isolationRecord()])
    const got = await store.get('iso')
    expect(got).not.toBeNull()
    tryToMutate(got!)
    expect(await store.get('iso')).toEqual(isolationRecord())
  })

  test('isolation: changing a record returned by getSync, where a store has it, does not change the stored record', async (store) => {
    if (store.getSync === undefined) return
    await insertAll(store, [isolationRecord()])
    const got = store.getSync('iso')
    expect(got).not.toBeNull()
    tryToMutate(got!)
    expect(store.getSync('iso')).toEqual(isolationRecord())
    expect(await store.get('iso')).toEqual(isolationRecord())
  })

  test('isolation: changing a record returned by list does not change the stored record', async (store) => {
    await insertAll(store, [isolationRecord()])
    const [listed] = await store.list(query())
    expect(listed).toBeDefined()
    tryToMutate(listed!)
    expect(await store.get('iso')).toEqual(isolationRecord())
  })

  test('isolation: changing the object passed to update afterwards does not change the stored record', async (store) => {
    await insertAll(store, [isolationRecord()])
    const next = nextVersion(isolationRecord(), { name: 'second' })
    const expected = structuredClone(next)
    expect(await store.update(next, 1)).toBe('updated')
    tryToMutate(next)
    expect(await store.get('iso')).toEqual(expected)
  })
}
