// Issue 11, finding 5 on Redis: quotas count per owner within a tenant. Namespaces written by 0.1.0 kept
// one live set per owner for all its tenants; these tests write records in exactly that layout with raw
// commands, then upgrade with RedisStore.migrate() and check quotas, revocations, deletions and that
// nothing but the quota sets changed.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisStore, type SendCommand } from '../../adapters/redis/index.js'
import { StoreError, type KeyManager, type QuotaCheck, type StoredKey } from '../../src/index.js'
import { makeRecord } from '../conformance/records.js'
import { setup } from '../helpers.js'
import { BACKENDS } from '../support/backends.js'
import { SERVICES } from '../support/services.js'

const backend = BACKENDS.find((candidate) => candidate.name === 'redis')!
const gate = await backend.gate()

const float = new DataView(new ArrayBuffer(8))

/** 0.1.0's order member `<createdAt as 16 ordered hex digits>:<id>`, rebuilt here from its spec. */
function memberOf(createdAt: number, id: string): string {
  float.setFloat64(0, createdAt === 0 ? 0 : createdAt)
  const bits = float.getBigUint64(0)
  const ordered = (bits & (1n << 63n)) === 0n ? bits | (1n << 63n) : ~bits & ((1n << 64n) - 1n)
  return `${ordered.toString(16).padStart(16, '0')}:${id}`
}

/**
 * Writes `record` as keywarden 0.1.0's insert script did: the hash (`fixed`, `doc`, `version`,
 * `lastUsedAt`), the order indexes, the expiry index and the owner's live set of every tenant. IDs used
 * here need no escaping in key names.
 */
async function writeAs010(redis: Redis, namespace: string, record: StoredKey): Promise<void> {
  const tag = `{${namespace}}`
  const { id, ownerId, tenantId, environment, createdAt, lastUsedAt, version, ...doc } = record
  const member = memberOf(createdAt, id)
  const fixed = JSON.stringify({ id, ownerId, tenantId, environment, createdAt })
  const { name, description, type, scopes, roles, groups, metadata, start, hash, previousHash, previousHashExpiresAt } = doc
  const { updatedAt, expiresAt, enabled, revokedAt, expiryNoticeFor } = doc
  const docText = JSON.stringify({
    name,
    description,
    type,
    scopes,
    roles,
    groups,
    metadata,
    start,
    hash,
    previousHash,
    previousHashExpiresAt,
    updatedAt,
    expiresAt,
    enabled,
    revokedAt,
    expiryNoticeFor,
  })
  const writes = redis.multi().hset(`${tag}:key:${id}`, 'fixed', fixed, 'doc', docText, 'version', String(version))
  if (lastUsedAt !== null) writes.hset(`${tag}:key:${id}`, 'lastUsedAt', String(lastUsedAt))
  writes.zadd(`${tag}:idx:all`, 0, member)
  if (ownerId !== null) writes.zadd(`${tag}:idx:owner:${ownerId}`, 0, member)
  if (tenantId !== null) writes.zadd(`${tag}:idx:tenant:${tenantId}`, 0, member)
  if (ownerId !== null && revokedAt === null) writes.sadd(`${tag}:live:owner:${ownerId}`, id)
  if (expiresAt !== null && revokedAt === null) writes.zadd(`${tag}:idx:expiry`, expiresAt, id)
  await writes.exec()
}

interface Fixture {
  readonly store: RedisStore
  readonly keys: KeyManager
  readonly namespace: string
  /** Tokens of the keys written in the 0.1.0 layout, by name. */
  readonly tokens: Record<string, string>
  /** Key IDs of the keys written in the 0.1.0 layout, by name. */
  readonly ids: Record<string, string>
  readonly dump: () => Promise<string[]>
  /** The members of a live set, sorted, by key suffix (e.g. `live:owner:u1`). */
  readonly members: (suffix: string) => Promise<string[]>
}

// Name, owner, tenant, revoked: owner u1 holds two live keys in acme, one in globex, one without a
// tenant and a revoked one in acme; u2 holds one in acme; one acme key has no owner.
const LEGACY_KEYS: [string, string | null, string | null, boolean][] = [
  ['a1', 'u1', 'acme', false],
  ['a2', 'u1', 'acme', false],
  ['a3', 'u1', 'acme', true],
  ['g1', 'u1', 'globex', false],
  ['n1', 'u1', null, false],
  ['b1', 'u2', 'acme', false],
  ['z1', null, 'acme', false],
]

describe.skipIf(!gate.available)('RedisStore: quotas per owner within a tenant, and the upgrade from 0.1.0', () => {
  let raw: Redis

  beforeAll(() => {
    raw = new Redis(SERVICES.redis)
  })

  afterAll(async () => {
    await raw?.quit()
    await backend.close()
  })

  /**
   * Issues the keys of {@link LEGACY_KEYS} on a scratch namespace (real hashes, so their tokens verify),
   * rewrites them in the 0.1.0 layout into a fresh namespace, and hands over a KeyManager on it with a
   * quota of two keys per owner.
   */
  async function withLegacyNamespace(body: (fixture: Fixture) => Promise<void>): Promise<void> {
    const scratch = await backend.open()
    const handle = await backend.open()
    const store = handle.store as RedisStore
    const { keys, time } = setup({ store, maxKeysPerOwner: 2 })
    try {
      const issuer = setup({ store: scratch.store, clock: () => time.now })
      const tokens: Record<string, string> = {}
      const ids: Record<string, string> = {}
      for (const [name, ownerId, tenantId, revoked] of LEGACY_KEYS) {
        const issued = await issuer.keys.create({ name, environment: 'live', ...(ownerId && { ownerId }), ...(tenantId && { tenantId }) })
        if (revoked) await issuer.keys.revoke(issued.key.id)
        time.advance(1000)
        tokens[name] = issued.token
        ids[name] = issued.key.id
        await writeAs010(raw, store.namespace, (await scratch.store.get(issued.key.id))!)
      }
      await issuer.keys.close()
      const members = async (suffix: string) => (await raw.smembers(`{${store.namespace}}:${suffix}`)).sort()
      const dump = async () => (await handle.dump()).split('\n').sort()
      await body({ store, keys, namespace: store.namespace, tokens, ids, dump, members })
    } finally {
      await keys.close()
      await handle.cleanup()
      await scratch.cleanup()
    }
  }

  const TENANTS = ['t0', 't1', 't2', 't3', 't4', null]

  /** Writes 250 keys of u1 over five tenants and none in the 0.1.0 layout: three migration batches. */
  async function writeManyAs010(namespace: string): Promise<{ id: string; tenantId: string | null }[]> {
    const records = Array.from({ length: 250 }, (_, i) => ({ id: `k${String(i).padStart(3, '0')}`, tenantId: TENANTS[i % TENANTS.length]! }))
    for (const [i, { id, tenantId }] of records.entries()) {
      await writeAs010(raw, namespace, { ...makeRecord(), id, ownerId: 'u1', tenantId, createdAt: 1_700_000_000_000 + i })
    }
    return records
  }

  /** The namespace is marked migrated and each key of u1 is in its tenant's set, or in u1's set without a tenant. */
  async function expectMigrated(namespace: string, records: readonly { id: string; tenantId: string | null }[]): Promise<void> {
    const tag = `{${namespace}}`
    expect(await raw.hgetall(`${tag}:meta`)).toEqual({ layout: '2', snapshots: 'complete' })
    for (const tenantId of TENANTS) {
      const expected = records.filter((record) => record.tenantId === tenantId).map((record) => record.id)
      const set = tenantId === null ? `${tag}:live:owner:u1` : `${tag}:live:tenant:${tenantId}:owner:u1`
      expect((await raw.smembers(set)).sort(), String(tenantId)).toEqual(expected)
    }
  }

  const create = (keys: KeyManager, ownerId: string, tenantId: string | null) =>
    keys.create({ name: 'new', ownerId, environment: 'live', ...(tenantId !== null && { tenantId }) })

  it('on a new namespace the same owner ID in two tenants has a quota each, and neither sees the other', async () => {
    const handle = await backend.open()
    const { keys } = setup({ store: handle.store, maxKeysPerOwner: 1 })
    try {
      await create(keys, 'user-1', 'acme')
      await expect(create(keys, 'user-1', 'acme')).rejects.toMatchObject({ code: 'quota_exceeded', tenantId: 'acme' })
      const other = await create(keys, 'user-1', 'globex')
      expect((await keys.verify(other.token)).valid).toBe(true)
      const untenanted = await create(keys, 'user-1', null)
      expect((await keys.verify(untenanted.token)).valid).toBe(true)
      await expect(create(keys, 'user-1', null)).rejects.toMatchObject({ code: 'quota_exceeded', tenantId: null })
    } finally {
      await keys.close()
      await handle.cleanup()
    }
  })

  it('a quota check without tenantId (a caller written against 0.1.0’s contract) counts the keys without a tenant', async () => {
    const handle = await backend.open()
    const store = handle.store
    try {
      const quota = { ownerId: 'u1', limit: 1 } as QuotaCheck
      expect(await store.insert(makeRecord({ id: 'k1', ownerId: 'u1' }), quota)).toBe('inserted')
      expect(await store.insert(makeRecord({ id: 'k2', ownerId: 'u1' }), quota)).toBe('quota_exceeded')
      expect(await store.insert(makeRecord({ id: 'k3', ownerId: 'u1', tenantId: 'acme' }), { ownerId: 'u1', tenantId: 'acme', limit: 1 })).toBe('inserted')
    } finally {
      await handle.cleanup()
    }
  })

  it('before migrate(), 0.1.0 keys count in each of their owner’s tenants: never fewer keys than the owner holds', async () => {
    await withLegacyNamespace(async ({ keys }) => {
      // u1 holds two live keys in acme: refused, as it must be.
      await expect(create(keys, 'u1', 'acme')).rejects.toMatchObject({ code: 'quota_exceeded' })
      // u1 holds one in globex, but its 0.1.0 set holds four keys of unknown tenant: refused too.
      await expect(create(keys, 'u1', 'globex')).rejects.toMatchObject({ code: 'quota_exceeded' })
      await expect(create(keys, 'u1', null)).rejects.toMatchObject({ code: 'quota_exceeded' })
      // u2 holds one: the quota of two leaves room.
      await create(keys, 'u2', 'acme')
    })
  })

  it('migrate() moves each tenant key into its tenant set, changes nothing else, and is idempotent', async () => {
    await withLegacyNamespace(async ({ store, keys, namespace, ids, tokens, dump, members }) => {
      const before = await dump()
      await store.migrate()
      const after = await dump()

      const moved = [`{${namespace}}:live:`, `{${namespace}}:meta`, `{${namespace}}:v:`]
      const unchanged = (lines: string[]) => lines.filter((line) => !moved.some((prefix) => line.startsWith(prefix)))
      expect(unchanged(after)).toEqual(unchanged(before))
      // Every record gained its verify snapshot, which reads back as the hash did.
      expect(after.filter((line) => line.startsWith(`{${namespace}}:v:`))).toHaveLength(Object.keys(ids).length)
      expect(await members('live:owner:u1')).toEqual([ids.n1])
      expect(await members('live:tenant:acme:owner:u1')).toEqual([ids.a1, ids.a2].sort())
      expect(await members('live:tenant:globex:owner:u1')).toEqual([ids.g1])
      expect(await members('live:tenant:acme:owner:u2')).toEqual([ids.b1])
      expect(await raw.exists(`{${namespace}}:live:owner:u2`)).toBe(0)
      expect(await raw.hgetall(`{${namespace}}:meta`)).toEqual({ layout: '2', snapshots: 'complete' })

      await store.migrate()
      expect(await dump()).toEqual(after)

      for (const name of ['a1', 'a2', 'g1', 'n1', 'b1', 'z1']) expect((await keys.verify(tokens[name]!)).valid, name).toBe(true)
      expect(await keys.verify(tokens.a3!)).toMatchObject({ valid: false, reason: 'revoked' })
    })
  })

  it('after migrate(), quotas count per tenant, and revoking or deleting a migrated key frees its slot there', async () => {
    await withLegacyNamespace(async ({ store, keys, ids, members }) => {
      await store.migrate()

      await expect(create(keys, 'u1', 'acme')).rejects.toMatchObject({ code: 'quota_exceeded', tenantId: 'acme' })
      const globex = await create(keys, 'u1', 'globex')
      await expect(create(keys, 'u1', 'globex')).rejects.toMatchObject({ code: 'quota_exceeded', tenantId: 'globex' })
      const untenanted = await create(keys, 'u1', null)
      await expect(create(keys, 'u1', null)).rejects.toMatchObject({ code: 'quota_exceeded', tenantId: null })
      expect(await members('live:owner:u1')).toEqual([ids.n1, untenanted.key.id].sort())
      expect(await members('live:tenant:globex:owner:u1')).toEqual([ids.g1, globex.key.id].sort())

      await keys.revoke(ids.a1!)
      expect(await members('live:tenant:acme:owner:u1')).toEqual([ids.a2])
      const acme = await create(keys, 'u1', 'acme')
      expect(await members('live:tenant:acme:owner:u1')).toEqual([ids.a2, acme.key.id].sort())

      await keys.delete(ids.g1!)
      expect(await members('live:tenant:globex:owner:u1')).toEqual([globex.key.id])
      await create(keys, 'u1', 'globex')
      await keys.delete(ids.n1!)
      expect(await members('live:owner:u1')).toEqual([untenanted.key.id])
    })
  })

  it('updates, revokes and deletes before migrate() keep the sets right, and migrate() finishes the job', async () => {
    await withLegacyNamespace(async ({ store, keys, ids, members }) => {
      // An update moves a 0.1.0 tenant key into its tenant set at once.
      await keys.update(ids.a1!, { name: 'renamed' })
      expect(await members('live:tenant:acme:owner:u1')).toEqual([ids.a1])
      // A revocation and a deletion take the key out of the 0.1.0 set.
      await keys.revoke(ids.a2!)
      await keys.delete(ids.g1!)
      expect(await members('live:owner:u1')).toEqual([ids.n1])

      await store.migrate()
      expect(await members('live:owner:u1')).toEqual([ids.n1])
      expect(await members('live:tenant:acme:owner:u1')).toEqual([ids.a1])
      expect(await members('live:tenant:globex:owner:u1')).toEqual([])
      await create(keys, 'u1', 'acme')
      await expect(create(keys, 'u1', 'acme')).rejects.toMatchObject({ code: 'quota_exceeded' })
    })
  })

  it('an interrupted migrate() resumes where it stopped, and ends as an uninterrupted one', async () => {
    const handle = await backend.open()
    const namespace = (handle.store as RedisStore).namespace
    const tag = `{${namespace}}`
    const viaCall: SendCommand = (args) => raw.call(args[0]!, ...args.slice(1))
    try {
      const records = await writeManyAs010(namespace)

      // The connection drops when the second batch is sent.
      let batches = 0
      const dropping = new RedisStore({
        namespace,
        client: async (args) => {
          if (args[0] === 'EVALSHA' && args[3] === `${tag}:meta` && ++batches === 2) throw new Error('Connection is closed.')
          return viaCall(args)
        },
      })
      await expect(dropping.migrate()).rejects.toBeInstanceOf(StoreError)
      const partial = await raw.hgetall(`${tag}:meta`)
      expect(partial.layout).toBeUndefined()
      expect(partial.migrationCursor).toBe(memberOf(1_700_000_000_000 + 99, 'k099'))

      const sent: string[][] = []
      const resuming = new RedisStore({ namespace, client: (args) => (sent.push(args), viaCall(args)) })
      await resuming.migrate()
      const ranges = sent.filter((args) => args[0] === 'ZRANGEBYLEX')
      expect(ranges[0]![2]).toBe(`(${partial.migrationCursor}`)
      expect(ranges).toHaveLength(2)

      await expectMigrated(namespace, records)
    } finally {
      await handle.cleanup()
    }
  })

  it('migrate() called by several instances at once ends migrated, with no cursor left behind', async () => {
    const handle = await backend.open()
    const namespace = (handle.store as RedisStore).namespace
    try {
      const records = await writeManyAs010(namespace)
      const instances = Array.from({ length: 3 }, () => new RedisStore({ client: raw, namespace }))
      await Promise.all(instances.map((store) => store.migrate()))
      await expectMigrated(namespace, records)
    } finally {
      await handle.cleanup()
    }
  })

  it('a migration batch that finds a set holding a string fails, moves nothing, and succeeds once it is gone', async () => {
    await withLegacyNamespace(async ({ store, namespace, ids, dump, members }) => {
      await raw.set(`{${namespace}}:live:tenant:globex:owner:u1`, 'written by someone else')
      const before = await dump()
      await expect(store.migrate()).rejects.toMatchObject({ code: 'store_failed', operation: 'migrate' })
      expect(await dump()).toEqual(before)

      await raw.del(`{${namespace}}:live:tenant:globex:owner:u1`)
      await store.migrate()
      expect(await members('live:tenant:globex:owner:u1')).toEqual([ids.g1])
    })
  })

  it('a namespace this version created needs no migration: migrate() reads one hash and writes nothing', async () => {
    const handle = await backend.open()
    const store = handle.store as RedisStore
    const { keys } = setup({ store })
    try {
      await create(keys, 'u1', 'acme')
      const dump = async () => (await handle.dump()).split('\n').sort()
      const before = await dump()
      const sent: string[][] = []
      const spied = new RedisStore({ namespace: store.namespace, client: (args) => (sent.push(args), raw.call(args[0]!, ...args.slice(1))) })
      await spied.migrate()
      expect(sent.map((args) => args[0])).toEqual(['HMGET'])
      expect(await dump()).toEqual(before)
    } finally {
      await keys.close()
      await handle.cleanup()
    }
  })
})
