/** Conformance cases for touch: lastUsedAt only moves forward and never changes the version. */
import { makeRecord, makeRichRecord, T0 } from '../records.js'
import { insertAll, listIds, nextVersion, type SuiteContext } from './case-helpers.js'

export function touchTests({ test, expect }: SuiteContext): void {
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
    expect(await store.touch('ghost', T0)).toBeUndefined()
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
