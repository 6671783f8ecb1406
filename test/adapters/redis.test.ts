import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisStore, type RedisClientLike, type SendCommand } from '../../adapters/redis/index.js'
import { MemoryStore } from '../../adapters/memory/index.js'
import { ConfigError, StoreError, type KeyQuery, type KeyStore, type StoredKey } from '../../src/index.js'
import { describeKeyStore } from '../conformance/describe-key-store.js'
import { makeRecord, T0 } from '../conformance/records.js'
import { setup } from '../helpers.js'
import { seededRandom } from '../support/differential.js'
import { redisGate } from '../support/gates.js'
import { SERVICES, uniqueSuffix } from '../support/services.js'

const gate = await redisGate()

type NodeRedisClient = ReturnType<typeof createClient>

/** Every key whose name contains `namespace` (unique per test), found with SCAN, never KEYS. */
async function keysOf(client: Redis, namespace: string): Promise<string[]> {
  const found: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `*${namespace}*`, 'COUNT', 1000)
    found.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return found.sort()
}

async function deleteNamespace(client: Redis, namespace: string): Promise<void> {
  const keys = await keysOf(client, namespace)
  if (keys.length > 0) await client.del(...keys)
}

describe.skipIf(!gate.available)('RedisStore', () => {
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

  const namespace = () => `kwtest-${uniqueSuffix()}`
  const viaCall: SendCommand = (args) => ioredis.call(args[0]!, ...args.slice(1))
  const teardown = (store: RedisStore) => deleteNamespace(ioredis, store.namespace)

  describeKeyStore('redis (ioredis)', () => new RedisStore({ client: ioredis, namespace: namespace() }), { teardown })
  describeKeyStore('redis (node-redis)', () => new RedisStore({ client: nodeRedis, namespace: namespace() }), { teardown })
  describeKeyStore('redis (sendCommand function)', () => new RedisStore({ client: viaCall, namespace: namespace() }), { teardown })

  describe('Redis specifics', () => {
    /** Runs `body` with a store on a fresh namespace and deletes its keys afterwards. */
    async function withStore(body: (store: RedisStore) => Promise<void>, client: RedisClientLike = ioredis) {
      const store = new RedisStore({ client, namespace: namespace() })
      try {
        await body(store)
      } finally {
        await deleteNamespace(ioredis, store.namespace)
      }
    }

    it('every key the store writes carries the {namespace} hash tag, in the documented layout', async () => {
      await withStore(async (store) => {
        const ns = store.namespace
        const k1 = makeRecord({ id: 'k1', ownerId: 'alice', tenantId: 'acme', expiresAt: T0 + 1000 })
        await store.insert(k1, { ownerId: 'alice', tenantId: 'acme', limit: 5 })
        await store.insert(makeRecord({ id: 'k2', ownerId: 'bob', revokedAt: T0 }), null)
        await store.touch('k1', T0 + 5)
        const k2 = (await store.get('k2'))!
        expect(await store.update({ ...k2, version: 2, name: 'renamed' }, 1)).toBe('updated')

        const keys = await keysOf(ioredis, ns)
        expect(keys).toEqual(
          [
            `{${ns}}:idx:all`,
            `{${ns}}:idx:expiry`,
            `{${ns}}:idx:owner:alice`,
            `{${ns}}:idx:owner:bob`,
            `{${ns}}:idx:tenant:acme`,
            `{${ns}}:key:k1`,
            `{${ns}}:key:k2`,
            `{${ns}}:live:tenant:acme:owner:alice`,
            `{${ns}}:meta`,
            `{${ns}}:v:k1`,
            `{${ns}}:v:k2`,
          ].sort(),
        )
        for (const key of keys) expect(key.startsWith(`{${ns}}:`), key).toBe(true)
        // The first insert into an empty namespace marks it as needing no migration.
        expect(await ioredis.hgetall(`{${ns}}:meta`)).toEqual({ layout: '2', snapshots: 'complete' })

        // Deleting every record leaves only that mark behind.
        await store.delete('k1')
        await store.delete('k2')
        expect(await keysOf(ioredis, ns)).toEqual([`{${ns}}:meta`])
      })
    })

    it('owner and tenant IDs containing :, {, }, % and unicode never collide or break the hash tag', async () => {
      await withStore(async (store) => {
        const ns = store.namespace
        const ids = ['a', 'a:b', 'a:b:c', 'a:', ':a', '{a}', 'a}', '{', '}', '}{', '%', '%0061', 'ü', 'u', '🔑', 'a b', 'a*', '']
        for (const [i, id] of ids.entries()) {
          const record = makeRecord({ id: `k${String(i).padStart(2, '0')}`, ownerId: id, tenantId: id, createdAt: T0 + i })
          // A quota of 1 per owner: each owner's first key fits only if no other owner's key is counted.
          expect(await store.insert(record, { ownerId: id, tenantId: id, limit: 1 }), JSON.stringify(id)).toBe('inserted')
        }
        const listIds = async (filter: Partial<KeyQuery>) =>
          (await store.list({ now: T0, order: 'asc', limit: 100, ...filter })).map((record) => record.id)
        for (const [i, id] of ids.entries()) {
          const expected = [`k${String(i).padStart(2, '0')}`]
          expect(await listIds({ ownerId: id }), JSON.stringify(id)).toEqual(expected)
          expect(await listIds({ tenantId: id }), JSON.stringify(id)).toEqual(expected)
        }
        const keys = await keysOf(ioredis, ns)
        // One record, owner index, tenant index and quota set per ID, plus the all-records index and the meta hash.
        expect(keys).toHaveLength(ids.length * 5 + 2)
        for (const key of keys) {
          expect(key.startsWith(`{${ns}}:`), key).toBe(true)
          expect(key.slice(ns.length + 2), key).not.toMatch(/[{} *]/)
        }
      })
    })

    it('an unreachable server makes get reject quickly with a StoreError that keeps the cause', async () => {
      const offline = new Redis({
        host: '127.0.0.1',
        port: 1,
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      })
      try {
        const store = new RedisStore({ client: offline, namespace: 'offline' })
        const started = performance.now()
        const error = await store.get('some-key-id').then(
          () => null,
          (rejection: unknown) => rejection,
        )
        expect(performance.now() - started).toBeLessThan(2000)
        expect(error).toBeInstanceOf(StoreError)
        expect(error).toMatchObject({ code: 'store_failed', operation: 'get' })
        expect((error as StoreError).cause).toBeInstanceOf(Error)
        expect((error as StoreError).message).toBe("The key store failed during 'get'")
      } finally {
        offline.disconnect()
      }
    })

    it('a closed node-redis client makes every operation reject with a StoreError naming it', async () => {
      const closed = createClient({ socket: SERVICES.redis })
      const store = new RedisStore({ client: closed, namespace: 'closed' })
      const operations: [string, () => Promise<unknown>][] = [
        ['insert', () => store.insert(makeRecord(), null)],
        ['get', () => store.get('x')],
        ['update', () => store.update(makeRecord({ version: 2 }), 1)],
        ['delete', () => store.delete('x')],
        ['list', () => store.list({ now: T0, order: 'asc', limit: 10 })],
        ['touch', () => store.touch('x', T0)],
      ]
      for (const [operation, call] of operations) {
        const error = await call().then(
          () => null,
          (rejection: unknown) => rejection,
        )
        expect(error, operation).toBeInstanceOf(StoreError)
        expect((error as StoreError).operation).toBe(operation)
        expect((error as StoreError).cause).toBeDefined()
      }
    })

    it('the constructor refuses a wrong client or namespace with a ConfigError, and does no I/O', () => {
      for (const client of [{}, null, undefined, 'redis://localhost', { call: 'nope' }]) {
        expect(() => new RedisStore({ client: client as never }), String(client)).toThrow(ConfigError)
      }
      const error = (() => {
        try {
          new RedisStore({ client: {} as never })
        } catch (thrown) {
          return thrown as ConfigError
        }
      })()
      expect(error?.issues[0]?.path).toEqual(['client'])
      expect(error?.message).toMatch(/ioredis.*node-redis.*function/)
      for (const bad of ['', '{x}', 'a{b', 'a}b']) {
        expect(() => new RedisStore({ client: viaCall, namespace: bad }), bad).toThrow(ConfigError)
      }

      const calls: string[][] = []
      const store = new RedisStore({ client: async (args) => void calls.push(args) })
      expect(store.namespace).toBe('keywarden')
      expect(calls).toEqual([])
    })

    it('a node-redis cluster is told the namespace’s hash tag as firstKey, and to use the primary, for every command', async () => {
      const sent: [unknown, unknown, string[]][] = []
      const cluster = {
        sendCommand: async (firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]) => {
          sent.push([firstKey, isReadonly, args])
          // No snapshot, and a namespace that does not say every record has one: the hash is read too.
          return args[0] === 'EVALSHA' ? [null, null, null, null, null] : null
        },
      }
      const store = new RedisStore({ client: cluster, namespace: 'billing-api' })
      expect(sent).toEqual([]) // no I/O in the constructor
      expect(await store.get('k1')).toBeNull()
      expect(sent.map(([firstKey, isReadonly, args]) => [firstKey, isReadonly, args[0], args.includes('{billing-api}:key:k1') || args.includes('{billing-api}:v:k1')])).toEqual([
        ['{billing-api}', false, 'GET', true],
        ['{billing-api}', false, 'EVALSHA', true],
      ])
      // Told apart from a node-redis client by its shape alone: getSlotMaster, or a three-argument sendCommand.
      const shaped = { sendCommand: async (...args: unknown[]) => void sent.push(args as never), getSlotMaster: () => undefined }
      sent.length = 0
      await new RedisStore({ client: shaped as never }).get('k2').catch(() => undefined)
      expect(sent[0]?.slice(0, 2)).toEqual(['{keywarden}', false])
    })

    it('close() leaves the caller’s client open', async () => {
      await withStore(async (store) => {
        await store.close()
        expect(await ioredis.ping()).toBe('PONG')
        expect(await nodeRedis.ping()).toBe('PONG')
      })
    })

    it('scripts still run after the server forgot them (NOSCRIPT falls back to EVAL)', async () => {
      await withStore(async (store) => {
        await ioredis.call('SCRIPT', 'FLUSH')
        expect(await store.insert(makeRecord({ id: 'after-flush', ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 })).toBe('inserted')
        await ioredis.call('SCRIPT', 'FLUSH')
        expect(await store.delete('after-flush')).toBe(true)
      })
    })

    it('an ioredis keyPrefix reaches every key, because each script declares every key it touches', async () => {
      const prefixed = new Redis({ ...SERVICES.redis, keyPrefix: 'app:' })
      try {
        await withStore(async (store) => {
          const ns = store.namespace
          const viaPrefix = new RedisStore({ client: prefixed, namespace: ns })
          const record = makeRecord({ id: 'p1', ownerId: 'o', tenantId: 't', expiresAt: T0 + 5 })
          expect(await viaPrefix.insert(record, { ownerId: 'o', tenantId: 't', limit: 1 })).toBe('inserted')
          const keys = await keysOf(ioredis, ns)
          expect(keys).toHaveLength(8)
          for (const key of keys) expect(key.startsWith(`app:{${ns}}:`), key).toBe(true)
          const expiresWithin = { from: T0, to: T0 + 5 }
          expect(await viaPrefix.list({ ownerId: 'o', tenantId: 't', expiresWithin, now: T0, order: 'asc', limit: 5 })).toEqual([record])
          expect(await viaPrefix.delete('p1')).toBe(true)
          expect(await keysOf(ioredis, ns)).toEqual([`app:{${ns}}:meta`])
        })
      } finally {
        prefixed.disconnect()
      }
    })

    it('list reads only what the page needs: no SCAN or KEYS, and a small page fetches few records', async () => {
      const sent: string[][] = []
      const spy: SendCommand = (args) => {
        sent.push(args)
        return viaCall(args)
      }
      await withStore(async (store) => {
        const records = Array.from({ length: 300 }, (_, i) => makeRecord({ id: `r${String(i).padStart(3, '0')}`, ownerId: `o${i % 3}` }))
        await Promise.all(records.map((record) => store.insert(record, null)))
        sent.length = 0
        const page = await store.list({ now: T0, order: 'desc', limit: 5 })
        expect(page.map((record) => record.id)).toEqual(['r299', 'r298', 'r297', 'r296', 'r295'])
        const commands = sent.map((args) => args[0]!.toUpperCase())
        expect(commands).not.toContain('SCAN')
        expect(commands).not.toContain('KEYS')
        // EVALSHA only: after a NOSCRIPT the same batch is sent again with EVAL.
        const fetched = sent.filter((args) => args[0] === 'EVALSHA').reduce((sum, args) => sum + Number(args[2]), 0)
        expect(fetched).toBe(5)
      }, spy)
    })

    it('list agrees with the memory store on a few hundred records, across indexes, batches and the expiry window', async () => {
      await withStore(async (redis) => {
        const memory = new MemoryStore()
        const { next, pick } = seededRandom(42)
        const NOW = T0 + 50_000
        const records: StoredKey[] = Array.from({ length: 600 }, (_, i) =>
          makeRecord({
            id: `${pick(['a', 'B', '9', 'z'])}${i.toString(36)}`,
            ownerId: pick(['alice', 'bob', 'carol', null]),
            tenantId: pick(['t1', 't2', null]),
            environment: pick(['live', 'test']),
            type: pick(['service', 'personal', null]),
            createdAt: T0 + Math.floor(next() * 60) * 1000, // many ties
            expiresAt: pick([null, null, T0 + Math.floor(next() * 100_000)]),
            enabled: next() < 0.8,
            revokedAt: next() < 0.15 ? T0 + 1 : null,
          }),
        )
        for (const store of [redis, memory] as KeyStore[]) {
          await Promise.all(records.map((record) => store.insert(record, null)))
        }
        const queries: Partial<KeyQuery>[] = [
          {},
          { order: 'desc', limit: 7 },
          { ownerId: 'alice' },
          { ownerId: 'bob', tenantId: 't2', order: 'desc' },
          { tenantId: 't1', status: 'active', limit: 3 },
          { environment: 'test', type: 'service', limit: 40 },
          { status: 'expired' },
          { status: 'disabled', order: 'desc', limit: 2 },
          { status: 'revoked', ownerId: 'carol' },
          { expiresWithin: { from: NOW, to: NOW + 2_000 } }, // a small window: read from the expiry index
          { expiresWithin: { from: NOW, to: NOW + 2_000 }, order: 'desc', limit: 3 },
          { expiresWithin: { from: 0, to: T0 + 1_000_000 }, ownerId: 'alice', limit: 5 }, // wider than the owner's index: walk it
          { expiresWithin: { from: NOW, to: NOW + 30_000 }, ownerId: 'alice', order: 'desc' },
          { expiresWithin: { from: NOW, to: NOW } },
          { after: { createdAt: T0 + 30_000, id: 'B' }, limit: 10 },
          { after: { createdAt: T0 + 30_000, id: 'B' }, order: 'desc', type: 'personal', limit: 10 },
          { after: { createdAt: T0 + 30_000, id: 'B' }, expiresWithin: { from: NOW, to: NOW + 5_000 } },
          { after: { createdAt: T0 + 30_000, id: 'B' }, expiresWithin: { from: NOW, to: NOW + 5_000 }, order: 'desc' },
        ]
        const sent: string[] = []
        const spied = new RedisStore({ client: (args) => (sent.push(args[0]!), viaCall(args)), namespace: redis.namespace })
        for (const overrides of queries) {
          const query: KeyQuery = { now: NOW, order: 'asc', limit: 1000, ...overrides }
          const ids = async (store: KeyStore) => (await store.list(query)).map((record) => record.id)
          const expected = await ids(memory)
          expect(await ids(redis), JSON.stringify(overrides)).toEqual(expected)
          expect(await ids(spied), JSON.stringify(overrides)).toEqual(expected)
        }
        // Both strategies ran: index walks in each direction and expiry-window reads.
        expect(new Set(sent)).toEqual(new Set(['ZRANGEBYLEX', 'ZREVRANGEBYLEX', 'ZCARD', 'ZCOUNT', 'ZRANGEBYSCORE', 'EVALSHA']))
      })
    })

    it('end to end through KeyManager: create, verify, rotate, revoke, quota', async () => {
      await withStore(async (store) => {
        const { keys, time } = setup({ store, maxKeysPerOwner: 1 })
        const { key, token } = await keys.create({ name: 'CI', ownerId: 'user:42', environment: 'live', scopes: ['data:read'] })
        expect(await keys.verify(token, { scopes: ['data:read'] })).toMatchObject({ valid: true, key: { id: key.id } })
        const second = keys.create({ name: 'second', ownerId: 'user:42', environment: 'live' })
        await expect(second).rejects.toMatchObject({ code: 'quota_exceeded' })

        time.advance(1000)
        const rotated = await keys.rotate(key.id, { gracePeriod: '1h' })
        expect((await keys.verify(token)).valid).toBe(true)
        expect((await keys.verify(rotated.token)).valid).toBe(true)
        time.advance(3_600_000)
        expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'wrong_secret' })
        expect((await keys.verify(rotated.token)).valid).toBe(true)

        await keys.revoke(key.id)
        expect(await keys.verify(rotated.token)).toMatchObject({ valid: false, reason: 'revoked' })
        expect((await keys.list({ ownerId: 'user:42', status: 'revoked' })).items.map((item) => item.id)).toEqual([key.id])
        // The revoked key no longer counts against the quota of one.
        const replacement = await keys.create({ name: 'replacement', ownerId: 'user:42', environment: 'live' })
        expect((await keys.verify(replacement.token)).valid).toBe(true)

        await keys.delete(key.id)
        expect(await store.get(key.id)).toBeNull()
      })
    })
  })
})
