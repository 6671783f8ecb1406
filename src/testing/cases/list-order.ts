/** Conformance cases for list's order by (createdAt, id), limit, the keyset `after`, and paging walks. */
import { compareListPositions, type KeyStore, type ListPosition, type StoredKey } from '../../store.js'
import { makeRecord, T0, type MutableStoredKey } from '../records.js'
import type { RunnerExpect } from '../runner.js'
import { insertAll, listIds, query, type SuiteContext } from './case-helpers.js'
import { filterFixture } from './list-filters.js'

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

export function listOrderTests({ test, expect }: SuiteContext): void {
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

/** Twenty records in ties of three on createdAt, mixed-case ids, inserted out of order. */
function pagingFixture(): MutableStoredKey[] {
  const ids = ['pq', 'pA', 'p0', 'pz', 'pa', 'pZ', 'pB', 'p9', 'pb', 'pm', 'pM', 'p5', 'px', 'pX', 'pc', 'pC', 'p1', 'pn', 'pN', 'py']
  // (index * 7) % 20 scrambles 0..19; dividing by 3 groups them into ties.
  return ids.map((id, index) => makeRecord({ id, createdAt: T0 + Math.floor(((index * 7) % 20) / 3) }))
}

function sortedIds(records: readonly StoredKey[], order: 'asc' | 'desc'): string[] {
  const sorted = [...records].sort(compareListPositions).map((record) => record.id)
  return order === 'asc' ? sorted : sorted.reverse()
}

/**
 * Lists page by page from the start, each page after the last record of the previous one, until a
 * short page. `betweenPages` runs after each full page.
 */
async function walk(expect: RunnerExpect, store: KeyStore, order: 'asc' | 'desc', pageSize: number, betweenPages?: (page: number) => Promise<void>): Promise<string[]> {
  const seen: string[] = []
  let after: ListPosition | undefined
  for (let page = 0; page < 100; page++) {
    const batch = await store.list(query({ order, limit: pageSize, after }))
    expect(batch.length).toBeLessThanOrEqual(pageSize)
    seen.push(...batch.map((record) => record.id))
    const last = batch.at(-1)
    if (batch.length < pageSize || last === undefined) return seen
    after = { createdAt: last.createdAt, id: last.id }
    await betweenPages?.(page)
  }
  throw new Error('pagination did not end after 100 pages')
}

export function listPagingTests({ test, expect }: SuiteContext): void {
  for (const order of ['asc', 'desc'] as const) {
    test(`list: paging ${order} with limit 3 returns every record once, in order`, async (store) => {
      const records = pagingFixture()
      await insertAll(store, records)
      expect(new Set(records.map((record) => record.createdAt)).size).toBeLessThan(records.length)
      expect(await walk(expect, store, order, 3)).toEqual(sortedIds(records, order))
    })
  }

  test('list: paging asc while later records are inserted returns every record once, newcomers last', async (store) => {
    const records = pagingFixture()
    await insertAll(store, records)
    const newcomers = Array.from({ length: 5 }, (_, i) => makeRecord({ id: `new${i}`, createdAt: T0 + 1000 + i }))
    const seen = await walk(expect, store, 'asc', 3, async (page) => {
      const newcomer = newcomers[page]
      if (newcomer) expect(await store.insert(newcomer, null)).toBe('inserted')
    })
    expect(seen).toEqual([...sortedIds(records, 'asc'), ...newcomers.map((record) => record.id)])
  })

  test('list: paging desc while later records are inserted returns every earlier record once', async (store) => {
    const records = pagingFixture()
    await insertAll(store, records)
    const seen = await walk(expect, store, 'desc', 3, async (page) => {
      if (page < 5) expect(await store.insert(makeRecord({ id: `new${page}`, createdAt: T0 + 1000 + page }), null)).toBe('inserted')
    })
    expect(seen).toEqual(sortedIds(records, 'desc'))
    expect(await listIds(store, { limit: 100 })).toHaveLength(records.length + 5)
  })
}