/**
 * The shared KeyStore conformance suite. Every adapter test file calls {@link describeKeyStore} with a
 * factory; each test gets a fresh store and checks one promise of the contract in src/store.ts directly
 * (records are built with makeRecord, never through KeyManager). Instants are fixed epoch milliseconds.
 */
import { describe, expect, it } from 'vitest'
import type { InsertResult, KeyQuery, KeyStore, ListPosition, StoredKey, UpdateResult } from '../../src/index.js'
import { recordStoreDump } from '../support/canary/dump.js'
import { keyManagerScenarios } from './key-manager-scenarios.js'
import { makeRecord, makeRichRecord, T0, type MutableStoredKey } from './records.js'

/** Options of {@link describeKeyStore}. */
export interface DescribeKeyStoreOptions<S extends KeyStore> {
  /** Exact test names this backend opts out of; they show as skipped. An unknown name fails the suite. */
  readonly skip?: readonly string[]
  /** Runs after every test with that test's store; without it, the store's own `close()` runs. */
  readonly teardown?: (store: S) => Promise<void>
}

type Register = (title: string, body: (store: KeyStore) => Promise<void>) => void

/**
 * Registers `KeyStore conformance: <name>`: one vitest test per contract promise.
 *
 * @example
 * ```ts
 * describeKeyStore('memory', () => new MemoryStore())
 * ```
 */
export function describeKeyStore<S extends KeyStore>(
  name: string,
  createStore: () => Promise<S> | S,
  options: DescribeKeyStoreOptions<S> = {},
): void {
  describe(`KeyStore conformance: ${name}`, () => {
    const skipped = new Set(options.skip ?? [])
    const registered = new Set<string>()

    const register: Register = (title, body) => {
      if (registered.has(title)) throw new Error(`Duplicate conformance test name: ${title}`)
      registered.add(title)
      if (skipped.has(title)) {
        it.skip(title, () => {})
        return
      }
      it(title, async () => {
        const store = await createStore()
        try {
          await body(store)
        } finally {
          // For the leak canary: what the store holds, raw, before the teardown drops it.
          await recordStoreDump(store, `conformance ${name}: ${title}`)
          await (options.teardown ? options.teardown(store) : store.close?.())
        }
      })
    }

    insertAndGetTests(register)
    isolationTests(register)
    quotaTests(register)
    updateTests(register)
    deleteTests(register)
    touchTests(register)
    listFilterTests(register)
    listStatusTests(register)
    listExpiresWithinTests(register)
    listOrderTests(register)
    listPagingTests(register)
    keyManagerScenarios(register)

    // A misspelt name would silently skip nothing: fail instead.
    const unknown = [...skipped].filter((title) => !registered.has(title))
    if (unknown.length > 0) throw new Error(`options.skip names no conformance test: ${unknown.join(' | ')}`)
  })
}

// ---------------------------------------------------------------------------------------------------
// Helpers

function query(overrides: Partial<KeyQuery> = {}): KeyQuery {
  return { now: T0, order: 'asc', limit: 1000, ...overrides }
}

async function listIds(store: KeyStore, overrides: Partial<KeyQuery> = {}): Promise<string[]> {
  return (await store.list(query(overrides))).map((record) => record.id)
}

/** Inserts records one by one without a quota, asserting each is inserted. */
async function insertAll(store: KeyStore, records: readonly StoredKey[]): Promise<void> {
  for (const record of records) expect(await store.insert(record, null), `insert ${record.id}`).toBe('inserted')
}

function count<T>(values: readonly T[], value: T): number {
  return values.filter((item) => item === value).length
}

/** The next version of `record` as a caller builds it: new fields, `version + 1`, a later updatedAt. */
function nextVersion(record: StoredKey, changes: Partial<StoredKey> = {}): MutableStoredKey {
  return makeRecord({ ...record, version: record.version + 1, updatedAt: record.updatedAt + 1000, ...changes })
}

/** The reference order of the contract: createdAt, then id in code-unit (binary) order. */
function comparePosition(a: ListPosition, b: ListPosition): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

function positionOf(record: StoredKey): ListPosition {
  return { createdAt: record.createdAt, id: record.id }
}

/** Records with the default fields and these ids; createdAt is T0 + index unless given. */
function recordsWithIds(ids: readonly string[], changes: Partial<StoredKey> = {}): MutableStoredKey[] {
  return ids.map((id, index) => makeRecord({ id, createdAt: T0 + index, updatedAt: T0 + index, ...changes }))
}

// ---------------------------------------------------------------------------------------------------
// insert / get

function insertAndGetTests(test: Register): void {
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
    for (const [field, value] of Object.entries(instants)) expect(got?.[field as keyof typeof instants], field).toBe(value)
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
}

// ---------------------------------------------------------------------------------------------------
// Isolation: callers can neither change what is stored nor be changed by it.

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

function isolationTests(test: Register): void {
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

// ---------------------------------------------------------------------------------------------------
// Quota: insert counts the owner's non-revoked records atomically.

function ownedBy(ownerId: string | null, ids: readonly string[], changes: Partial<StoredKey> = {}): MutableStoredKey[] {
  return recordsWithIds(ids, { ownerId, ...changes })
}

function quotaTests(test: Register): void {
  test('quota: inserts while the owner holds fewer non-revoked records than the limit', async (store) => {
    await insertAll(store, ownedBy('alice', ['a1']))
    expect(await store.insert(makeRecord({ id: 'a2', ownerId: 'alice' }), { ownerId: 'alice', limit: 2 })).toBe('inserted')
    expect(await listIds(store, { ownerId: 'alice' })).toEqual(['a1', 'a2'])
  })

  test('quota: refuses an insert that would exceed the limit and writes nothing', async (store) => {
    await insertAll(store, ownedBy('alice', ['a1', 'a2']))
    expect(await store.insert(makeRecord({ id: 'a3', ownerId: 'alice' }), { ownerId: 'alice', limit: 2 })).toBe('quota_exceeded')
    expect(await store.get('a3')).toBeNull()
    expect(await listIds(store, { ownerId: 'alice' })).toEqual(['a1', 'a2'])
  })

  test('quota: revoked records do not count', async (store) => {
    await insertAll(store, ownedBy('alice', ['r1', 'r2'], { revokedAt: T0 }))
    expect(await store.insert(makeRecord({ id: 'a1', ownerId: 'alice' }), { ownerId: 'alice', limit: 1 })).toBe('inserted')
  })

  test('quota: disabled and expired records still count', async (store) => {
    await insertAll(store, [
      makeRecord({ id: 'd1', ownerId: 'alice', enabled: false }),
      makeRecord({ id: 'e1', ownerId: 'alice', expiresAt: T0 - 1 }),
    ])
    expect(await store.insert(makeRecord({ id: 'a1', ownerId: 'alice' }), { ownerId: 'alice', limit: 2 })).toBe('quota_exceeded')
  })

  test("quota: other owners' records and ownerless records do not count", async (store) => {
    await insertAll(store, [...ownedBy('bob', ['b1', 'b2', 'b3']), ...ownedBy(null, ['n1', 'n2'])])
    expect(await store.insert(makeRecord({ id: 'a1', ownerId: 'alice' }), { ownerId: 'alice', limit: 1 })).toBe('inserted')
  })

  test('quota: a limit of 0 refuses the first record', async (store) => {
    expect(await store.insert(makeRecord({ id: 'a1', ownerId: 'alice' }), { ownerId: 'alice', limit: 0 })).toBe('quota_exceeded')
    expect(await store.get('a1')).toBeNull()
  })

  test('quota: a null quota inserts whatever the owner holds', async (store) => {
    await insertAll(store, ownedBy('alice', ['a1', 'a2', 'a3']))
    expect(await store.insert(makeRecord({ id: 'a4', ownerId: 'alice' }), null)).toBe('inserted')
  })

  test('quota: revoking a record through update frees its slot', async (store) => {
    await insertAll(store, ownedBy('alice', ['a1', 'a2']))
    const quota = { ownerId: 'alice', limit: 2 }
    expect(await store.insert(makeRecord({ id: 'a3', ownerId: 'alice' }), quota)).toBe('quota_exceeded')
    const a1 = (await store.get('a1'))!
    expect(await store.update(nextVersion(a1, { revokedAt: T0 + 5 }), a1.version)).toBe('updated')
    expect(await store.insert(makeRecord({ id: 'a3', ownerId: 'alice' }), quota)).toBe('inserted')
  })

  test('quota: deleting a record frees its slot', async (store) => {
    await insertAll(store, ownedBy('alice', ['a1', 'a2']))
    const quota = { ownerId: 'alice', limit: 2 }
    expect(await store.delete('a1')).toBe(true)
    expect(await store.insert(makeRecord({ id: 'a3', ownerId: 'alice' }), quota)).toBe('inserted')
  })

  test('quota: of 50 parallel inserts against a limit of 2, exactly 2 succeed', async (store) => {
    const candidates = Array.from({ length: 50 }, (_, i) => makeRecord({ id: `par${String(i).padStart(2, '0')}`, ownerId: 'alice' }))
    const results: InsertResult[] = await Promise.all(candidates.map((record) => store.insert(record, { ownerId: 'alice', limit: 2 })))
    expect(count(results, 'inserted')).toBe(2)
    expect(count(results, 'quota_exceeded')).toBe(48)
    const winners = candidates.filter((_, i) => results[i] === 'inserted').map((record) => record.id)
    expect((await listIds(store, { ownerId: 'alice' })).sort()).toEqual(winners.sort())
  })
}

// ---------------------------------------------------------------------------------------------------
// update: compare-and-set on version

function updateTests(test: Register): void {
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
    for (const expectedVersion of [2, 4, 0]) {
      const next = nextVersion(original, { name: `by ${expectedVersion}`, version: expectedVersion + 1 })
      expect(await store.update(next, expectedVersion), `expected version ${expectedVersion}`).toBe('conflict')
    }
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
    for (const passed of [null, T0 + 100, T0 + 900]) {
      const current = (await store.get('used'))!
      expect(await store.update(nextVersion(current, { lastUsedAt: passed }), current.version)).toBe('updated')
      expect((await store.get('used'))?.lastUsedAt, `passed ${passed}`).toBe(T0 + 500)
    }
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

// ---------------------------------------------------------------------------------------------------
// delete

function deleteTests(test: Register): void {
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

// ---------------------------------------------------------------------------------------------------
// touch

function touchTests(test: Register): void {
  test('touch: sets lastUsedAt on a never-used record', async (store) => {
    await insertAll(store, [makeRecord({ id: 't' })])
    await store.touch('t', T0 + 10)
    expect((await store.get('t'))?.lastUsedAt).toBe(T0 + 10)
  })

  test('touch: raises lastUsedAt to a later instant', async (store) => {
    await insertAll(store, [makeRecord({ id: 't', lastUsedAt: T0 + 10 })])
    await store.touch('t', T0 + 11)
    expect((await store.get('t'))?.lastUsedAt).toBe(T0 + 11)
  })

  test('touch: never lowers lastUsedAt', async (store) => {
    await insertAll(store, [makeRecord({ id: 't', lastUsedAt: T0 + 10 })])
    await store.touch('t', T0 + 9)
    await store.touch('t', T0 + 10)
    await store.touch('t', 0)
    expect((await store.get('t'))?.lastUsedAt).toBe(T0 + 10)
  })

  test('touch: changes neither version, updatedAt nor any other field', async (store) => {
    const original = makeRichRecord({ lastUsedAt: null })
    await insertAll(store, [original])
    await store.touch(original.id, T0 + 99)
    expect(await store.get(original.id)).toEqual(makeRichRecord({ lastUsedAt: T0 + 99 }))
  })

  test('touch: a touched record still updates at the version read before the touch', async (store) => {
    const original = makeRecord({ id: 't' })
    await insertAll(store, [original])
    await store.touch('t', T0 + 50)
    expect(await store.update(nextVersion(original, { name: 'managed' }), 1)).toBe('updated')
    expect(await store.get('t')).toMatchObject({ name: 'managed', version: 2, lastUsedAt: T0 + 50 })
  })

  test('touch: parallel touches keep the latest instant', async (store) => {
    await insertAll(store, [makeRecord({ id: 't' })])
    const instants = Array.from({ length: 20 }, (_, i) => T0 + ((i * 7) % 20))
    await Promise.all(instants.map((at) => store.touch('t', at)))
    expect((await store.get('t'))?.lastUsedAt).toBe(T0 + 19)
  })

  test('touch: an unknown id does nothing and creates no record', async (store) => {
    await expect(store.touch('ghost', T0)).resolves.toBeUndefined()
    expect(await store.get('ghost')).toBeNull()
    expect(await listIds(store)).toEqual([])
  })

  test('touch: a deleted record is not re-created', async (store) => {
    await insertAll(store, [makeRecord({ id: 'gone' })])
    await store.delete('gone')
    await store.touch('gone', T0 + 1)
    expect(await store.get('gone')).toBeNull()
  })
}

// ---------------------------------------------------------------------------------------------------
// list: field filters

/** Seven records, created in id order, covering each filter value and null. */
function filterFixture(): MutableStoredKey[] {
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

function listFilterTests(test: Register): void {
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

// ---------------------------------------------------------------------------------------------------
// list: status at `now` (revoked > expired > disabled > active; expired when expiresAt <= now)

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

function listStatusTests(test: Register): void {
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

// ---------------------------------------------------------------------------------------------------
// list: expiresWithin { from, to } selects non-revoked records with from < expiresAt <= to

const FROM = T0 + 10_000
const TO = T0 + 20_000

function listExpiresWithinTests(test: Register): void {
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

// ---------------------------------------------------------------------------------------------------
// list: order by (createdAt, id), limit, keyset `after`

/** Inserted out of order; ids run against createdAt, and three records tie at T0 + 2. */
function orderFixture(): MutableStoredKey[] {
  const rows: [string, number][] = [
    ['m', T0 + 2],
    ['z', T0 + 1],
    ['a', T0 + 3],
    ['c', T0 + 2],
    ['b', T0 + 2],
    ['y', T0],
  ]
  return rows.map(([id, createdAt]) => makeRecord({ id, createdAt, updatedAt: createdAt }))
}

const ASC = ['y', 'z', 'b', 'c', 'm', 'a']
const DESC = [...ASC].reverse()

function listOrderTests(test: Register): void {
  test('list: asc orders by createdAt, ties broken by id', async (store) => {
    await insertAll(store, orderFixture())
    expect(await listIds(store, { order: 'asc' })).toEqual(ASC)
  })

  test('list: desc orders by createdAt descending, ties broken by id descending', async (store) => {
    await insertAll(store, orderFixture())
    expect(await listIds(store, { order: 'desc' })).toEqual(DESC)
  })

  test('list: ties on createdAt are broken by id in binary order (digits, upper case, lower case)', async (store) => {
    const ids = ['ab', 'AB', '09', 'zz', 'aB', 'Ab', 'ZZ', '9z']
    await insertAll(store, ids.map((id) => makeRecord({ id })))
    expect(await listIds(store)).toEqual(['09', '9z', 'AB', 'Ab', 'ZZ', 'aB', 'ab', 'zz'])
  })

  test('list: limit returns the first records in order', async (store) => {
    await insertAll(store, orderFixture())
    expect(await listIds(store, { limit: 1 })).toEqual(ASC.slice(0, 1))
    expect(await listIds(store, { limit: 4 })).toEqual(ASC.slice(0, 4))
    expect(await listIds(store, { limit: 2, order: 'desc' })).toEqual(DESC.slice(0, 2))
    expect(await listIds(store, { limit: 6 })).toEqual(ASC)
    expect(await listIds(store, { limit: 50 })).toEqual(ASC)
  })

  test('list: after returns only records strictly after the position (asc)', async (store) => {
    await insertAll(store, orderFixture())
    expect(await listIds(store, { after: { createdAt: T0 + 2, id: 'c' } })).toEqual(['m', 'a'])
    expect(await listIds(store, { after: { createdAt: T0, id: 'y' } })).toEqual(ASC.slice(1))
    expect(await listIds(store, { after: { createdAt: T0 + 3, id: 'a' } })).toEqual([])
  })

  test('list: after returns only records strictly after the position (desc)', async (store) => {
    await insertAll(store, orderFixture())
    expect(await listIds(store, { order: 'desc', after: { createdAt: T0 + 2, id: 'c' } })).toEqual(['b', 'z', 'y'])
    expect(await listIds(store, { order: 'desc', after: { createdAt: T0 + 3, id: 'a' } })).toEqual(DESC.slice(1))
    expect(await listIds(store, { order: 'desc', after: { createdAt: T0, id: 'y' } })).toEqual([])
  })

  test('list: after works from a position no record holds', async (store) => {
    await insertAll(store, orderFixture())
    const gap = { createdAt: T0 + 2, id: 'd' }
    expect(await listIds(store, { after: gap })).toEqual(['m', 'a'])
    expect(await listIds(store, { order: 'desc', after: gap })).toEqual(['c', 'b', 'z', 'y'])
  })

  test('list: after combines with filters and limit', async (store) => {
    await insertAll(store, filterFixture())
    const after = { createdAt: T0, id: 'f01' }
    expect(await listIds(store, { type: 'service', after, limit: 2 })).toEqual(['f04', 'f05'])
  })
}

// ---------------------------------------------------------------------------------------------------
// list: keyset pagination walks

/** Twenty records in ties of three on createdAt, mixed-case ids, inserted out of order. */
function pagingFixture(): MutableStoredKey[] {
  const ids = ['pq', 'pA', 'p0', 'pz', 'pa', 'pZ', 'pB', 'p9', 'pb', 'pm', 'pM', 'p5', 'px', 'pX', 'pc', 'pC', 'p1', 'pn', 'pN', 'py']
  // (index * 7) % 20 scrambles 0..19; dividing by 3 groups them into ties.
  return ids.map((id, index) => makeRecord({ id, createdAt: T0 + Math.floor(((index * 7) % 20) / 3) }))
}

function sortedIds(records: readonly StoredKey[], order: 'asc' | 'desc'): string[] {
  const sorted = [...records].sort(comparePosition).map((record) => record.id)
  return order === 'asc' ? sorted : sorted.reverse()
}

/**
 * Lists page by page from the start, each page after the last record of the previous one, until a
 * short page. `betweenPages` runs after each full page.
 */
async function walk(store: KeyStore, order: 'asc' | 'desc', pageSize: number, betweenPages?: (page: number) => Promise<void>): Promise<string[]> {
  const seen: string[] = []
  let after: ListPosition | undefined
  for (let page = 0; page < 100; page++) {
    const batch = await store.list(query({ order, limit: pageSize, after }))
    expect(batch.length).toBeLessThanOrEqual(pageSize)
    seen.push(...batch.map((record) => record.id))
    const last = batch.at(-1)
    if (batch.length < pageSize || last === undefined) return seen
    after = positionOf(last)
    await betweenPages?.(page)
  }
  throw new Error('pagination did not end after 100 pages')
}

function listPagingTests(test: Register): void {
  for (const order of ['asc', 'desc'] as const) {
    test(`list: paging ${order} with limit 3 returns every record once, in order`, async (store) => {
      const records = pagingFixture()
      await insertAll(store, records)
      expect(new Set(records.map((record) => record.createdAt)).size).toBeLessThan(records.length)
      expect(await walk(store, order, 3)).toEqual(sortedIds(records, order))
    })
  }

  test('list: paging asc while later records are inserted returns every record once, newcomers last', async (store) => {
    const records = pagingFixture()
    await insertAll(store, records)
    const newcomers = Array.from({ length: 5 }, (_, i) => makeRecord({ id: `new${i}`, createdAt: T0 + 1000 + i }))
    const seen = await walk(store, 'asc', 3, async (page) => {
      const newcomer = newcomers[page]
      if (newcomer) expect(await store.insert(newcomer, null)).toBe('inserted')
    })
    expect(seen).toEqual([...sortedIds(records, 'asc'), ...newcomers.map((record) => record.id)])
  })

  test('list: paging desc while later records are inserted returns every earlier record once', async (store) => {
    const records = pagingFixture()
    await insertAll(store, records)
    const seen = await walk(store, 'desc', 3, async (page) => {
      if (page < 5) expect(await store.insert(makeRecord({ id: `new${page}`, createdAt: T0 + 1000 + page }), null)).toBe('inserted')
    })
    expect(seen).toEqual(sortedIds(records, 'desc'))
    expect(await listIds(store, { limit: 100 })).toHaveLength(records.length + 5)
  })
}
