// Issue 11, finding 8: Redis keeps the writes a script made before one of its commands failed, so every
// RedisStore write script checks its keys' types and its arguments before its first write. Each test
// makes a later command of a script fail (a string where a set or sorted set belongs, or an argument
// Redis refuses) and compares raw dumps of the namespace before and after: a failed write writes nothing.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RedisStore } from '../../adapters/redis/index.js'
import { StoreError, type KeyManager, type QuotaCheck } from '../../src/index.js'
import { makeRecord, T0 } from '../conformance/records.js'
import { setup } from '../helpers.js'
import { BACKENDS } from '../support/backends.js'
import { SERVICES } from '../support/services.js'

const backend = BACKENDS.find((candidate) => candidate.name === 'redis')!
const gate = await backend.gate()

interface Context {
  readonly store: RedisStore
  readonly keys: KeyManager
  /** The full name of a key of this store's namespace, e.g. `idx:all`. */
  readonly key: (suffix: string) => string
  /** Every key of the namespace with its value, one line each, sorted. */
  readonly dump: () => Promise<string[]>
}

describe.skipIf(!gate.available)('RedisStore: a write script that fails writes nothing', () => {
  let raw: Redis

  beforeAll(() => {
    raw = new Redis(SERVICES.redis)
  })

  afterAll(async () => {
    await raw?.quit()
    await backend.close()
  })

  /** A KeyManager (quota of one key per owner and tenant) on a store with a fresh namespace. */
  async function withManager(body: (context: Context) => Promise<void>): Promise<void> {
    const handle = await backend.open()
    const store = handle.store as RedisStore
    const { keys } = setup({ store, maxKeysPerOwner: 1 })
    const key = (suffix: string) => `{${store.namespace}}:${suffix}`
    const dump = async () => (await handle.dump()).split('\n').sort()
    try {
      await body({ store, keys, key, dump })
    } finally {
      await keys.close()
      await handle.cleanup()
    }
  }

  /** Writes a string where a hash, set or sorted set belongs. */
  async function corrupt(name: string): Promise<void> {
    await raw.set(name, 'written by someone else')
  }

  async function expectStoreError(call: Promise<unknown>, operation: string): Promise<void> {
    const error = await call.then(
      () => null,
      (rejection: unknown) => rejection,
    )
    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ code: 'store_failed', operation })
  }

  // Every key an insert of owner u1 in tenant t1 declares. Keys of the first four kinds made 0.1.0's
  // script fail after it had written the record (and, for the expiry index, taken the quota slot).
  const createCases: [string, string][] = [
    ['the all-records index', 'idx:all'],
    ['the owner index', 'idx:owner:u1'],
    ['the tenant index', 'idx:tenant:t1'],
    ['the expiry index', 'idx:expiry'],
    ['the tenant live set (the quota count)', 'live:tenant:t1:owner:u1'],
    ['the owner live set', 'live:owner:u1'],
    ['the namespace meta hash', 'meta'],
  ]

  for (const [role, suffix] of createCases) {
    it(`create: with ${role} holding a string, create fails, writes nothing and leaves the quota intact`, async () => {
      await withManager(async ({ keys, key, dump }) => {
        await corrupt(key(suffix))
        const before = await dump()
        await expectStoreError(keys.create({ name: 'CI', ownerId: 'u1', tenantId: 't1', environment: 'live' }), 'insert')
        expect(await dump()).toEqual(before)

        await raw.del(key(suffix))
        const created = await keys.create({ name: 'CI', ownerId: 'u1', tenantId: 't1', environment: 'live' })
        expect((await keys.verify(created.token)).valid).toBe(true)
        // The failed create took no slot: the quota of one is full with the key just created.
        await expect(keys.create({ name: 'second', ownerId: 'u1', tenantId: 't1', environment: 'live' })).rejects.toMatchObject({
          code: 'quota_exceeded',
        })
      })
    })
  }

  it('rotate: with the owner live set holding a string, rotate fails, the old token still verifies, version and hash unchanged', async () => {
    await withManager(async ({ store, keys, key, dump }) => {
      const { key: issued, token } = await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live' })
      const stored = await store.get(issued.id)
      await corrupt(key('live:owner:u1'))
      const before = await dump()

      await expectStoreError(keys.rotate(issued.id), 'update')
      expect(await dump()).toEqual(before)
      expect(await keys.verify(token)).toMatchObject({ valid: true, key: { id: issued.id } })
      expect(await store.get(issued.id)).toMatchObject({ version: stored!.version, hash: stored!.hash })
    })
  })

  it('revoke: with the expiry index holding a string, revoke fails and the key still verifies', async () => {
    await withManager(async ({ keys, key, dump }) => {
      const { key: issued, token } = await keys.create({ name: 'CI', ownerId: 'u1', tenantId: 't1', environment: 'live' })
      await corrupt(key('idx:expiry'))
      const before = await dump()

      await expectStoreError(keys.revoke(issued.id), 'update')
      expect(await dump()).toEqual(before)
      expect((await keys.verify(token)).valid).toBe(true)
      expect(await keys.get(issued.id)).toMatchObject({ revokedAt: null })
    })
  })

  it('update: with the expiry index holding a string, renaming fails and keeps the old name', async () => {
    await withManager(async ({ keys, key, dump }) => {
      const { key: issued } = await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live' })
      await corrupt(key('idx:expiry'))
      const before = await dump()

      await expectStoreError(keys.update(issued.id, { name: 'renamed' }), 'update')
      expect(await dump()).toEqual(before)
      expect(await keys.get(issued.id)).toMatchObject({ name: 'CI' })
    })
  })

  it('delete: with the owner index holding a string, delete fails and the key still verifies', async () => {
    await withManager(async ({ keys, key, dump }) => {
      const { key: issued, token } = await keys.create({ name: 'CI', ownerId: 'u1', tenantId: 't1', environment: 'live' })
      await corrupt(key('idx:owner:u1'))
      const before = await dump()

      await expectStoreError(keys.delete(issued.id), 'delete')
      expect(await dump()).toEqual(before)
      expect((await keys.verify(token)).valid).toBe(true)
      // Its quota slot is still taken.
      await raw.del(key('idx:owner:u1'))
      await expect(keys.create({ name: 'second', ownerId: 'u1', tenantId: 't1', environment: 'live' })).rejects.toMatchObject({
        code: 'quota_exceeded',
      })
    })
  })

  it('delete: with the tenant live set holding a string, delete fails and writes nothing', async () => {
    await withManager(async ({ keys, key, dump }) => {
      const { key: issued, token } = await keys.create({ name: 'CI', ownerId: 'u1', tenantId: 't1', environment: 'live' })
      await corrupt(key('live:tenant:t1:owner:u1'))
      const before = await dump()

      await expectStoreError(keys.delete(issued.id), 'delete')
      expect(await dump()).toEqual(before)
      expect((await keys.verify(token)).valid).toBe(true)
    })
  })

  it('touch: an instant that is not a finite number is refused, and lastUsedAt stays as it was', async () => {
    await withManager(async ({ store, keys, dump }) => {
      const { key: issued } = await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live' })
      const before = await dump()
      for (const at of [NaN, Infinity, -Infinity]) {
        await expectStoreError(store.touch(issued.id, at), 'touch')
      }
      expect(await dump()).toEqual(before)
      expect(await store.get(issued.id)).toMatchObject({ lastUsedAt: null })
      await store.touch(issued.id, T0)
      expect(await store.get(issued.id)).toMatchObject({ lastUsedAt: T0 })
    })
  })

  it('touch: a stored lastUsedAt that is not a number is refused, not overwritten', async () => {
    await withManager(async ({ store, keys, key, dump }) => {
      const { key: issued } = await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live' })
      await raw.hset(key(`key:${issued.id}`), 'lastUsedAt', 'soon')
      const before = await dump()
      await expectStoreError(store.touch(issued.id, T0), 'touch')
      expect(await dump()).toEqual(before)
    })
  })

  it('insert and update: numbers Redis cannot store (NaN, infinite versions) are refused before any write', async () => {
    await withManager(async ({ store, dump }) => {
      const quota: QuotaCheck = { ownerId: 'u1', tenantId: 't1', limit: 5 }
      const empty = await dump()
      await expectStoreError(store.insert(makeRecord({ id: 'k1', ownerId: 'u1', tenantId: 't1', expiresAt: NaN }), quota), 'insert')
      await expectStoreError(store.insert(makeRecord({ id: 'k1', ownerId: 'u1', tenantId: 't1', lastUsedAt: NaN }), quota), 'insert')
      await expectStoreError(store.insert(makeRecord({ id: 'k1', ownerId: 'u1', tenantId: 't1', version: Infinity }), quota), 'insert')
      await expectStoreError(store.insert(makeRecord({ id: 'k1', ownerId: 'u1', tenantId: 't1' }), { ...quota, limit: NaN }), 'insert')
      expect(await dump()).toEqual(empty)
      expect(await store.get('k1')).toBeNull()

      const record = makeRecord({ id: 'k1', ownerId: 'u1', tenantId: 't1', expiresAt: T0 + 1000 })
      expect(await store.insert(record, quota)).toBe('inserted')
      const before = await dump()
      await expectStoreError(store.update({ ...record, version: NaN }, 1), 'update')
      await expectStoreError(store.update({ ...record, version: 2, expiresAt: NaN }, 1), 'update')
      await expectStoreError(store.update({ ...record, version: 2 }, 1.5), 'update')
      expect(await dump()).toEqual(before)
      expect(await store.update({ ...record, version: 2, name: 'renamed' }, 1)).toBe('updated')
    })
  })

  it('a refused script names the part at fault, never a key name, an owner or a stored value', async () => {
    await withManager(async ({ keys, key }) => {
      await corrupt(key('idx:tenant:tenant-secret-name'))
      const error = await keys.create({ name: 'CI', ownerId: 'owner-secret-name', tenantId: 'tenant-secret-name', environment: 'live' }).then(
        () => null,
        (rejection: unknown) => rejection as StoreError,
      )
      expect(error).toBeInstanceOf(StoreError)
      const cause = String((error!.cause as Error).message)
      expect(cause).toMatch(/WRONGTYPE keywarden: the tenant index holds a string, expected a zset/)
      expect(cause).not.toMatch(/secret-name|kw\d\$/)
    })
  })
})
