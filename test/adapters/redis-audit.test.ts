// The audit trail of RedisStore, beyond the conformance suite: an entry and its change land in one
// script or neither does (shown by making either half fail with WRONGTYPE and comparing raw dumps of the
// namespace), the documented key layout, a trail of a few thousand entries against the memory store,
// bounded prune batches, and records written by 0.1.0 without the actor fields.
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { RedisStore, type SendCommand } from '../../adapters/redis/index.js'
import { auditMember } from '../../adapters/redis/keys.js'
import {
  StoreError,
  type Actor,
  type AuditAction,
  type AuditQuery,
  type AuditRecord,
  type CreditAdjustment,
  type CreditPool,
  type StoredKey,
} from '../../src/index.js'
import { makeRecord, T0 } from '../conformance/records.js'
import { setup } from '../helpers.js'
import { seededRandom } from '../support/differential.js'
import { redisGate } from '../support/gates.js'
import { writeLegacyRedisRecord } from '../support/redis-legacy.js'
import { deleteRedisNamespace, SERVICES, uniqueSuffix } from '../support/services.js'

const gate = await redisGate()

type NodeRedisClient = ReturnType<typeof createClient>

function entry(id: string, overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    id,
    at: T0,
    action: 'updated',
    keyId: 'k1',
    ownerId: 'u1',
    tenantId: 't1',
    actor: { type: 'user', id: 'admin' },
    reason: null,
    requestId: null,
    changes: { name: { from: 'a', to: 'b' } },
    ...structuredClone(overrides),
  }
}

function creditEntry(id: string, overrides: Partial<Omit<AuditRecord, 'changes'>> = {}): Omit<AuditRecord, 'changes'> {
  const { changes: _changes, ...head } = entry(id, { action: 'credits_changed', keyId: null, ...overrides })
  return head
}

async function rejection(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => null,
    (error: unknown) => error,
  )
}

describe.skipIf(!gate.available)('RedisStore: audit trail', () => {
  let ioredis: Redis
  let nodeRedis: NodeRedisClient

  beforeAll(async () => {
    ioredis = new Redis(SERVICES.redis)
    nodeRedis = createClient({ socket: SERVICES.redis })
    await nodeRedis.connect()
  })

  afterAll(async () => {
    await ioredis?.quit()
    await nodeRedis?.close()
  })

  /** Every key of `{namespace}`, found with SCAN. */
  async function keysOf(namespace: string): Promise<string[]> {
    const found: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await ioredis.scan(cursor, 'MATCH', `{${namespace}}:*`, 'COUNT', 1000)
      found.push(...batch)
      cursor = next
    } while (cursor !== '0')
    return found.sort()
  }

  /** Every key of the namespace with its type and full value, one line each, sorted. */
  async function dump(namespace: string): Promise<string[]> {
    const lines: string[] = []
    for (const key of await keysOf(namespace)) {
      const type = await ioredis.type(key)
      const value =
        type === 'hash'
          ? Object.entries(await ioredis.hgetall(key)).sort()
          : type === 'zset'
            ? await ioredis.call('ZRANGE', key, '0', '-1', 'WITHSCORES')
            : type === 'set'
              ? (await ioredis.smembers(key)).sort()
              : await ioredis.get(key)
      lines.push(`${key} ${type} ${JSON.stringify(value)}`)
    }
    return lines
  }

  async function withStore(body: (store: RedisStore, key: (suffix: string) => string) => Promise<void>, client: SendCommand | Redis | NodeRedisClient = ioredis) {
    const store = new RedisStore({ client, namespace: `kwaudit-${uniqueSuffix()}` })
    try {
      await body(store, (suffix) => `{${store.namespace}}:${suffix}`)
    } finally {
      await deleteRedisNamespace(ioredis, store.namespace)
    }
  }

  describe('an entry and its change are written together or not at all', () => {
    // Every audit key an entry of key k1, owner u1, tenant t1, actor admin, action `action` is written to.
    const auditKeys = (action: AuditAction): [string, string][] => [
      ['the entries hash', 'audit:entries'],
      ['the all-entries index', 'audit:idx:all'],
      ['the key index', 'audit:idx:key:k1'],
      ['the tenant index', 'audit:idx:tenant:t1'],
      ['the owner index', 'audit:idx:owner:u1'],
      ['the actor index', 'audit:idx:actor:admin'],
      ['the action index', `audit:idx:action:${action}`],
    ]

    /**
     * Sets `suffix` to a string, runs `call`, and expects a StoreError naming `operation` and a
     * namespace exactly as it was (the string aside); then, with the key removed again, no entry.
     */
    async function expectNothingWritten(store: RedisStore, key: (suffix: string) => string, suffix: string, operation: string, call: () => Promise<unknown>) {
      await ioredis.set(key(suffix), 'written by someone else')
      const before = await dump(store.namespace)
      const error = await rejection(call())
      expect(error, suffix).toBeInstanceOf(StoreError)
      expect(error).toMatchObject({ code: 'store_failed', operation })
      expect((error as StoreError).cause, suffix).toBeInstanceOf(Error)
      expect(String((error as StoreError).cause)).toMatch(/WRONGTYPE/)
      expect(await dump(store.namespace), suffix).toEqual(before)
      await ioredis.del(key(suffix))
      expect(await store.listAudit({ limit: 100 }), suffix).toEqual([])
    }

    for (const [role, suffix] of auditKeys('created')) {
      it(`insert: with ${role} holding a string, the insert fails and writes neither record nor entry`, async () => {
        await withStore(async (store, key) => {
          const record = makeRecord({ id: 'k1', ownerId: 'u1', tenantId: 't1', expiresAt: T0 + 1000 })
          await expectNothingWritten(store, key, suffix, 'insert', () => store.insert(record, { ownerId: 'u1', tenantId: 't1', limit: 1 }, entry('e1', { action: 'created' })))
          expect(await store.get('k1')).toBeNull()
          // The quota slot was not taken either.
          expect(await store.insert(record, { ownerId: 'u1', tenantId: 't1', limit: 1 }, entry('e1', { action: 'created' }))).toBe('inserted')
          expect((await store.listAudit({ limit: 10 })).map((item) => item.id)).toEqual(['e1'])
        })
      })
    }

    for (const [role, suffix] of auditKeys('updated')) {
      it(`update: with ${role} holding a string, the update fails and the record keeps its version and fields`, async () => {
        await withStore(async (store, key) => {
          const record = makeRecord({ id: 'k1', ownerId: 'u1', tenantId: 't1', expiresAt: T0 + 1000 })
          expect(await store.insert(record, null)).toBe('inserted')
          const stored = await store.get('k1')
          // Revoking would also leave the quota set and the expiry index: every write of the script is covered.
          const next = { ...record, version: 2, name: 'renamed', revokedAt: T0 + 1, updatedAt: T0 + 1 }
          await expectNothingWritten(store, key, suffix, 'update', () => store.update(next, 1, entry('e1')))
          expect(await store.get('k1')).toEqual(stored)
          expect(await store.update(next, 1, entry('e1'))).toBe('updated')
          expect(await store.get('k1')).toMatchObject({ version: 2, name: 'renamed' })
        })
      })
    }

    for (const [role, suffix] of auditKeys('deleted')) {
      it(`delete: with ${role} holding a string, the delete fails and the record stays`, async () => {
        await withStore(async (store, key) => {
          const record = makeRecord({ id: 'k1', ownerId: 'u1', tenantId: 't1' })
          expect(await store.insert(record, null)).toBe('inserted')
          const stored = await store.get('k1')
          await expectNothingWritten(store, key, suffix, 'delete', () => store.delete('k1', entry('e1', { action: 'deleted', changes: {} })))
          expect(await store.get('k1')).toEqual(stored)
          expect(await store.list({ ownerId: 'u1', now: T0, order: 'asc', limit: 5 })).toEqual([stored])
        })
      })
    }

    for (const [role, suffix] of auditKeys('credits_changed')) {
      it(`adjustCredits: with ${role} holding a string, the adjustment fails and the balance is unchanged`, async () => {
        await withStore(async (store, key) => {
          const pool: CreditPool = { id: 'credits:key:k1', initial: 10, refill: null }
          await store.adjustCredits({ pool, now: T0, mode: 'set', amount: 7 })
          const change: CreditAdjustment = { pool, now: T0 + 1, mode: 'add', amount: 5, audit: creditEntry('c1', { keyId: 'k1' }) }
          await expectNothingWritten(store, key, suffix, 'adjustCredits', () => store.adjustCredits(change))
          expect(await store.adjustCredits(change)).toEqual({ previous: 7, remaining: 12 })
        })
      })
    }

    // The other half: a key the change itself writes holds a string, so no entry may be written either.
    const changeCases: [string, string, (store: RedisStore) => Promise<unknown>, string][] = [
      ['insert', 'the owner index', (store) => store.insert(makeRecord({ id: 'k2', ownerId: 'u1', tenantId: 't1' }), null, entry('e9', { keyId: 'k2', action: 'created' })), 'idx:owner:u1'],
      ['insert', 'the expiry index', (store) => store.insert(makeRecord({ id: 'k2', ownerId: 'u1', expiresAt: T0 + 5 }), null, entry('e9', { keyId: 'k2', action: 'created' })), 'idx:expiry'],
      ['update', 'the expiry index', async (store) => store.update({ ...(await store.get('k1'))!, version: 2, expiresAt: T0 + 5 }, 1, entry('e9')), 'idx:expiry'],
      ['update', 'the quota set', async (store) => store.update({ ...(await store.get('k1'))!, version: 2, revokedAt: T0 + 5 }, 1, entry('e9', { action: 'revoked' })), 'live:tenant:t1:owner:u1'],
      ['delete', 'the all-records index', (store) => store.delete('k1', entry('e9', { action: 'deleted' })), 'idx:all'],
      ['delete', 'the tenant index', (store) => store.delete('k1', entry('e9', { action: 'deleted' })), 'idx:tenant:t1'],
      ['adjustCredits', 'the balance', (store) => store.adjustCredits({ pool: { id: 'credits:key:k1', initial: 1, refill: null }, now: T0, mode: 'add', amount: 1, audit: creditEntry('e9') }), 'balance:credits:key:k1'],
    ]
    for (const [operation, role, call, suffix] of changeCases) {
      it(`${operation}: with ${role} holding a string, the change fails and no entry is written`, async () => {
        await withStore(async (store, key) => {
          expect(await store.insert(makeRecord({ id: 'k1', ownerId: 'u1', tenantId: 't1' }), null, entry('e0', { action: 'created' }))).toBe('inserted')
          const record = await store.get('k1')
          const trail = await store.listAudit({ limit: 10 })
          await ioredis.set(key(suffix), 'written by someone else')
          const before = await dump(store.namespace)
          const error = await rejection(call(store))
          expect(error).toBeInstanceOf(StoreError)
          expect(error).toMatchObject({ operation })
          expect(await dump(store.namespace)).toEqual(before)
          expect(await store.get('k1')).toEqual(record)
          expect(await store.listAudit({ limit: 10 })).toEqual(trail)
        })
      })
    }

    it('an entry whose ID is already in the trail fails the change and writes nothing', async () => {
      await withStore(async (store) => {
        expect(await store.insert(makeRecord({ id: 'k1' }), null, entry('dup', { action: 'created' }))).toBe('inserted')
        const before = await dump(store.namespace)
        const error = await rejection(store.update({ ...(await store.get('k1'))!, version: 2, name: 'x' }, 1, entry('dup', { at: T0 + 5 })))
        expect(error).toMatchObject({ code: 'store_failed', operation: 'update' })
        expect(await dump(store.namespace)).toEqual(before)
      })
    })

    it('changes that do not happen write no entry and no audit key', async () => {
      await withStore(async (store) => {
        expect(await store.insert(makeRecord({ id: 'k1', ownerId: 'u1' }), null)).toBe('inserted')
        const before = await dump(store.namespace)
        expect(await store.insert(makeRecord({ id: 'k1' }), null, entry('a'))).toBe('id_taken')
        expect(await store.insert(makeRecord({ id: 'k2', ownerId: 'u1' }), { ownerId: 'u1', tenantId: null, limit: 1 }, entry('b'))).toBe('quota_exceeded')
        expect(await store.update(makeRecord({ id: 'k1', version: 3 }), 2, entry('c'))).toBe('conflict')
        expect(await store.update(makeRecord({ id: 'ghost', version: 2 }), 1, entry('d'))).toBe('not_found')
        expect(await store.delete('ghost', entry('e'))).toBe(false)
        expect(await dump(store.namespace)).toEqual(before)
      })
    })
  })

  it('writes the documented keys, all under the {namespace} hash tag, and entries outlive delete', async () => {
    await withStore(async (store) => {
      const ns = store.namespace
      const record = makeRecord({ id: 'k1', ownerId: 'u1', tenantId: 't1' })
      const created = entry('e1', { action: 'created', changes: {} })
      const updated = entry('e2', { at: T0 + 1, actor: { type: 'service', id: 'svc:1', tenantId: 't1' } })
      const deleted = entry('e3', { at: T0 + 2, action: 'deleted', actor: null, changes: {} })
      expect(await store.insert(record, null, created)).toBe('inserted')
      expect(await store.update({ ...record, version: 2, name: 'b' }, 1, updated)).toBe('updated')
      expect(await store.delete('k1', deleted)).toBe(true)
      expect(await store.get('k1')).toBeNull()

      // The key's own keys are gone; its entries and their indexes stay.
      expect(await keysOf(ns)).toEqual(
        [
          'audit:entries',
          'audit:idx:all',
          'audit:idx:key:k1',
          'audit:idx:tenant:t1',
          'audit:idx:owner:u1',
          'audit:idx:actor:admin',
          'audit:idx:actor:svc%003a1',
          'audit:idx:action:created',
          'audit:idx:action:updated',
          'audit:idx:action:deleted',
          'meta',
        ]
          .map((suffix) => `{${ns}}:${suffix}`)
          .sort(),
      )
      expect(await ioredis.hget(`{${ns}}:audit:entries`, 'e2')).toBe(JSON.stringify(updated))
      // Members at score 0, so Redis orders them by their bytes: (at, id).
      expect(await ioredis.call('ZRANGE', `{${ns}}:audit:idx:all`, '0', '-1')).toEqual([auditMember(T0, 'e1'), auditMember(T0 + 1, 'e2'), auditMember(T0 + 2, 'e3')])
      expect(await ioredis.zcount(`{${ns}}:audit:idx:all`, 0, 0)).toBe(3)
      expect(await store.listAudit({ keyId: 'k1', limit: 10 })).toEqual([deleted, updated, created])
      expect(await store.listAudit({ keyId: 'k1', action: 'deleted', limit: 1 })).toEqual([deleted])

      // Pruning the whole trail leaves only the namespace mark.
      expect(await store.pruneAudit(T0 + 3, 100)).toBe(3)
      expect(await keysOf(ns)).toEqual([`{${ns}}:meta`])
    })
  })

  it('an ioredis keyPrefix reaches every audit key: each script declares every key it touches', async () => {
    const prefixed = new Redis({ ...SERVICES.redis, keyPrefix: 'app:' })
    const namespace = `kwaudit-${uniqueSuffix()}`
    try {
      const store = new RedisStore({ client: prefixed, namespace })
      expect(await store.insert(makeRecord({ id: 'k1', ownerId: 'u1', tenantId: 't1' }), null, entry('e1', { action: 'created' }))).toBe('inserted')
      expect(await store.delete('k1', entry('e2', { at: T0 + 1, action: 'deleted' }))).toBe(true)
      await store.adjustCredits({ pool: { id: 'credits:owner:u1', initial: 0, refill: null }, now: T0, mode: 'add', amount: 3, audit: creditEntry('e3', { at: T0 + 2 }) })
      const all = await ioredis.keys(`*{${namespace}}*`)
      expect(all.length).toBeGreaterThan(8)
      for (const key of all) expect(key.startsWith(`app:{${namespace}}:`), key).toBe(true)
      expect((await store.listAudit({ ownerId: 'u1', limit: 10 })).map((item) => item.id)).toEqual(['e3', 'e2', 'e1'])
      expect(await store.pruneAudit(T0 + 10, 10)).toBe(3)
      expect(await ioredis.keys(`*{${namespace}}:audit*`)).toEqual([])
    } finally {
      for (const key of await ioredis.keys(`*{${namespace}}*`)) await ioredis.del(key)
      prefixed.disconnect()
    }
  })

  it('a credit entry is written with changes spliced in exactly, large balances and rich JSON included', async () => {
    await withStore(async (store) => {
      const pool: CreditPool = { id: 'credits:tenant:t1', initial: 5, refill: null }
      const head = creditEntry('c1', {
        keyId: null,
        reason: 'Top up — "quoted" \\ back\nslash 日本語 🔑 }',
        requestId: '{"not": "json"}',
        actor: { type: 'key', id: 'Ab3d}{', tenantId: 'ü' },
      })
      expect(await store.adjustCredits({ pool, now: T0, mode: 'set', amount: Number.MAX_SAFE_INTEGER, audit: head })).toEqual({
        previous: 5,
        remaining: Number.MAX_SAFE_INTEGER,
      })
      const down = creditEntry('c2', { at: T0 + 1 })
      expect(await store.adjustCredits({ pool, now: T0 + 1, mode: 'add', amount: -Number.MAX_SAFE_INTEGER + 1, audit: down })).toEqual({ previous: Number.MAX_SAFE_INTEGER, remaining: 1 })
      // A `changes` on the head (the type forbids it, JavaScript does not) is replaced, not doubled.
      const sneaky = { ...creditEntry('c3', { at: T0 + 2 }), changes: { name: { from: 1, to: 2 } } }
      expect(await store.adjustCredits({ pool, now: T0 + 2, mode: 'add', amount: 1, audit: sneaky })).toEqual({ previous: 1, remaining: 2 })
      expect(await store.listAudit({ limit: 10 })).toEqual([
        { ...creditEntry('c3', { at: T0 + 2 }), changes: { credits: { from: 1, to: 2 } } },
        { ...down, changes: { credits: { from: Number.MAX_SAFE_INTEGER, to: 1 } } },
        { ...head, changes: { credits: { from: 5, to: Number.MAX_SAFE_INTEGER } } },
      ])
    })
  })

  it('ties on at are ordered by id in UTF-16 code-unit order, characters above U+FFFF included', async () => {
    await withStore(async (store) => {
      const memory = new MemoryStore()
      // Code-unit order: '🔑' (D83D DD11) < 'ﬀ' (FB00) < '\uffff'; UTF-8 byte order would put '🔑' last.
      const ids = ['a', '\u007f', '\u0080', 'é', '\uffff', 'ﬀ', '🔑', '🔑a', 'z', '\ud800', 'A']
      for (const [i, id] of ids.entries()) {
        for (const target of [store, memory]) {
          expect(await target.insert(makeRecord({ id: `k${i}` }), null, entry(id, { keyId: `k${i}`, at: T0 + (i % 2) }))).toBe('inserted')
        }
      }
      const expected = (await memory.listAudit({ limit: 100 })).map((item) => item.id)
      expect((await store.listAudit({ limit: 100 })).map((item) => item.id)).toEqual(expected)
      for (const id of ids) {
        const before = { at: T0, id }
        expect((await store.listAudit({ before, limit: 100 })).map((item) => item.id), JSON.stringify(id)).toEqual(
          (await memory.listAudit({ before, limit: 100 })).map((item) => item.id),
        )
      }
      expect(await store.pruneAudit(T0 + 1, 100)).toBe(await memory.pruneAudit(T0 + 1, 100))
      expect(await store.listAudit({ limit: 100 })).toEqual(await memory.listAudit({ limit: 100 }))
    })
  })

  it('a trail of 2,400 entries pages like the memory store, with every filter, and prunes in bounded batches', async () => {
    const sent: string[][] = []
    const spy: SendCommand = (args) => {
      sent.push(args)
      return ioredis.call(args[0]!, ...args.slice(1))
    }
    await withStore(async (redis) => {
      const memory = new MemoryStore()
      const { next, pick, int } = seededRandom(7)
      const actors: (Actor | null)[] = [null, { type: 'user', id: 'alice' }, { type: 'service', id: 'deployer' }, { type: 'key', id: 'k:7', tenantId: 't1' }, { type: 'user', id: 'bob' }]
      const actions: AuditAction[] = ['created', 'updated', 'enabled', 'disabled', 'revoked', 'deleted', 'rotated', 'credits_changed']
      const entries: AuditRecord[] = Array.from({ length: 2_400 }, (_, i) =>
        entry(`${pick(['a', 'B', '0', '_'])}${i.toString(36)}`, {
          // Out of order and with many ties on `at`.
          at: T0 + int(0, 300) * 1000,
          action: pick(actions),
          keyId: pick(['k1', 'k2', 'k3', null, `k${i}`]),
          ownerId: pick(['alice', 'bob', null]),
          tenantId: pick(['t1', 't2', null]),
          actor: pick(actors),
          reason: next() < 0.2 ? `reason ${i}` : null,
          changes: next() < 0.5 ? {} : { scopes: { from: [], to: ['a', { b: [] }] } },
        }),
      )
      // Each entry rides on the insert of a record of its own; the entry's fields are its own.
      const write = async (store: RedisStore | MemoryStore) => {
        for (let start = 0; start < entries.length; start += 200) {
          await Promise.all(entries.slice(start, start + 200).map((item, j) => store.insert(makeRecord({ id: `r${start + j}` }), null, item)))
        }
      }
      await write(redis)
      await write(memory)

      const queries: Omit<AuditQuery, 'limit'>[] = [
        {},
        { keyId: 'k1' },
        { keyId: 'k2', action: 'updated' },
        { tenantId: 't1' },
        { ownerId: 'bob', tenantId: 't2' },
        { actorId: 'alice' },
        { actorId: 'k:7', ownerId: 'alice' },
        { action: 'revoked' },
        { action: 'credits_changed', tenantId: 't1', ownerId: 'alice', actorId: 'bob' },
        { from: T0 + 100_000, to: T0 + 200_000 },
        { keyId: 'k3', from: T0 + 50_000 },
        { tenantId: 't2', to: T0 + 150_000, actorId: 'deployer' },
        { keyId: 'nothing' },
        { keyId: 'k1', from: T0 + 10_000, to: T0 + 10_000 },
      ]
      const spied = new RedisStore({ client: spy, namespace: redis.namespace })
      for (const filters of queries) {
        const expected = await memory.listAudit({ ...filters, limit: 10_000 })
        expect(await redis.listAudit({ ...filters, limit: 10_000 }), JSON.stringify(filters)).toEqual(expected)
        for (const limit of [1, 7, 100, 333]) {
          // Walk the pages with `before`, as a cursor does.
          const walked: AuditRecord[] = []
          let before: AuditQuery['before']
          for (;;) {
            const page = await spied.listAudit({ ...filters, limit, ...(before === undefined ? {} : { before }) })
            expect(page.length).toBeLessThanOrEqual(limit)
            walked.push(...page)
            if (page.length < limit) break
            before = { at: page.at(-1)!.at, id: page.at(-1)!.id }
          }
          expect(walked.map((item) => item.id), `${JSON.stringify(filters)} limit ${limit}`).toEqual(expected.map((item) => item.id))
        }
      }
      // Paging never scans the keyspace, and a filtered page reads from a filter's index, not the all index.
      const commands = new Set(sent.map((args) => args[0]!.toUpperCase()))
      expect(commands).not.toContain('SCAN')
      expect(commands).not.toContain('KEYS')
      sent.length = 0
      expect(await spied.listAudit({ keyId: 'k2', tenantId: 't1', limit: 3 })).toEqual(await memory.listAudit({ keyId: 'k2', tenantId: 't1', limit: 3 }))
      const pages = sent.filter((args) => args[0] === 'EVALSHA' || args[0] === 'EVAL')
      expect(pages.length).toBe(1)
      expect(pages[0]![3]).toMatch(/:audit:idx:(key|tenant):/)

      // Prune in calls of 150: each removes exactly what the memory store removes, in scripts of at most 256 entries.
      const cutoff = T0 + 200_000
      sent.length = 0
      let calls = 0
      for (;;) {
        const removed = await spied.pruneAudit(cutoff, 150)
        expect(removed).toBe(await memory.pruneAudit(cutoff, 150))
        calls++
        if (calls % 4 === 0) expect(await redis.listAudit({ limit: 10_000 })).toEqual(await memory.listAudit({ limit: 10_000 }))
        if (removed < 150) break
      }
      const older = entries.filter((item) => item.at < cutoff).length
      expect(calls).toBe(Math.floor(older / 150) + 1)
      for (const args of sent.filter((command) => command[0] === 'EVALSHA' && Number(command[2]) >= 2 && command.length > 10)) {
        // EVALSHA sha numkeys ...keys ...args: seven arguments per entry.
        expect((args.length - 3 - Number(args[2])) / 7).toBeLessThanOrEqual(256)
      }
      // One big call is split into scripts of at most 256 entries too.
      sent.length = 0
      const rest = entries.length - older
      expect(await spied.pruneAudit(T0 + 1_000_000, 10_000)).toBe(rest)
      const pruneScripts = sent.filter((args) => args[0] === 'EVALSHA' && args.length > 3 + Number(args[2]) + 4)
      expect(pruneScripts.length).toBe(Math.ceil(rest / 256))
      // Nothing is left behind in any index.
      expect((await keysOf(redis.namespace)).filter((key) => key.includes(':audit:'))).toEqual([])
    }, spy)
  }, 60_000)

  describe('records written by 0.1.0 (no createdBy, updatedBy, disabledReason, disabledBy)', () => {
    it('read back with the four fields null, through get and list, and update then writes them', async () => {
      await withStore(async (store) => {
        const record: StoredKey = makeRecord({ id: 'old1', ownerId: 'u1', name: 'from 0.1.0' })
        await writeLegacyRedisRecord(ioredis, store.namespace, record)

        const expected = { ...record, policy: null, hasCredits: false, createdBy: null, updatedBy: null, disabledReason: null, disabledBy: null }
        expect(await store.get('old1')).toStrictEqual(expected)
        expect(await store.list({ now: T0, order: 'asc', limit: 10 })).toStrictEqual([expected])
        expect(await store.list({ ownerId: 'u1', now: T0, order: 'asc', limit: 10 })).toStrictEqual([expected])

        const admin: Actor = { type: 'user', id: 'admin', tenantId: 'acme' }
        const disabled = { ...expected, version: 2, enabled: false, updatedBy: admin, disabledBy: admin, disabledReason: 'Leaked — 🔑' }
        expect(await store.update(disabled, 1, entry('e1', { keyId: 'old1', action: 'disabled' }))).toBe('updated')
        expect(await store.get('old1')).toStrictEqual(disabled)
        expect(await store.list({ now: T0, order: 'asc', limit: 10 })).toStrictEqual([disabled])
        expect((await store.listAudit({ keyId: 'old1', limit: 5 })).map((item) => item.id)).toEqual(['e1'])
      }, nodeRedis)
    })
  })

  it('end to end through KeyManager: the trail records create, disable, credits and delete, and outlives the key', async () => {
    await withStore(async (store) => {
      const { keys, time } = setup({ store })
      const actor: Actor = { type: 'user', id: 'u_42', tenantId: 'acme' }
      const { key } = await keys.create({ name: 'CI', ownerId: 'user:1', environment: 'live' }, { actor })
      time.advance(1000)
      await keys.disable(key.id, { actor, reason: 'Leaked' })
      time.advance(1000)
      await keys.delete(key.id, { actor })
      const page = await keys.audit({ keyId: key.id })
      expect(page.items.map((item) => item.action)).toEqual(['deleted', 'disabled', 'created'])
      expect(page.items.every((item) => item.actor?.id === 'u_42')).toBe(true)
      expect(await store.get(key.id)).toBeNull()
      expect(await keys.pruneAudit({ before: new Date(time.now + 1) })).toBe(3)
      expect((await keys.audit({})).items).toEqual([])
      await keys.close()
    })
  })
})
