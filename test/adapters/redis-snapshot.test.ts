/**
 * The Redis verify snapshot: a record is read as one string, the reads of one event-loop turn share one
 * MGET, the write scripts keep the snapshot exact, and a namespace written before snapshots existed
 * keeps working until migrate() gives every record one.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisStore, type SendCommand } from '../../adapters/redis/index.js'
import { StoreError } from '../../src/index.js'
import { makeRecord, T0 } from '../conformance/records.js'
import { setup } from '../helpers.js'
import { redisGate } from '../support/gates.js'
import { writeLegacyRedisRecord } from '../support/redis-legacy.js'
import { SERVICES, uniqueSuffix } from '../support/services.js'

const gate = await redisGate()

describe.skipIf(!gate.available)('RedisStore verify snapshots', () => {
  let raw: Redis
  const namespaces: string[] = []

  beforeAll(() => {
    raw = new Redis(SERVICES.redis)
  })

  afterAll(async () => {
    for (const namespace of namespaces) {
      const keys = await raw.keys(`{${namespace}}:*`)
      if (keys.length > 0) await raw.del(...keys)
    }
    await raw?.quit()
  })

  /** A store on a fresh namespace whose every command is recorded (name and first argument). */
  function recordingStore(): { store: RedisStore; sent: string[][]; namespace: string } {
    const namespace = `kwsnap-${uniqueSuffix()}`
    namespaces.push(namespace)
    const sent: string[][] = []
    const send: SendCommand = (args) => {
      sent.push(args)
      return raw.call(args[0]!, ...args.slice(1))
    }
    return { store: new RedisStore({ client: send, namespace }), sent, namespace }
  }

  it('concurrent reads share one MGET, each answered with its own record or null', async () => {
    const { store, sent } = recordingStore()
    const records = Array.from({ length: 40 }, (_, i) => makeRecord({ id: `k${i}`, name: `key ${i}`, createdAt: T0 + i }))
    for (const record of records) await store.insert(record, null)
    expect(await store.get('missing-0')).toBeNull() // the store learns that every record has a snapshot
    sent.length = 0

    const ids = [...records.map((record) => record.id), 'missing-1', 'missing-2']
    const read = await Promise.all(ids.map((id) => store.get(id)))

    expect(sent.map((args) => args[0])).toEqual(['MGET'])
    expect(sent[0]).toHaveLength(ids.length + 1)
    expect(read.slice(0, 40)).toEqual(records)
    expect(read.slice(40)).toEqual([null, null])
  })

  it('a read alone is one GET, and a missing record in a namespace this version created costs no second read', async () => {
    const { store, sent } = recordingStore()
    const record = makeRecord({ id: 'k1' })
    await store.insert(record, null)
    sent.length = 0
    expect(await store.get('k1')).toEqual(record)
    expect(await store.get('nope')).toBeNull() // learns from the meta hash, once
    expect(await store.get('nope-again')).toBeNull()
    expect(sent.map((args) => args[0])).toEqual(['GET', 'GET', 'EVALSHA', 'GET'])
  })

  it('touch, update and delete keep the snapshot exactly what the hash holds', async () => {
    const { store, namespace } = recordingStore()
    const record = makeRecord({ id: 'k1', metadata: { lastUsedAt: 5, note: ',"lastUsedAt":1,' } })
    await store.insert(record, null)
    await store.touch('k1', T0 + 10)
    expect(await store.get('k1')).toEqual({ ...record, lastUsedAt: T0 + 10 })
    await store.touch('k1', T0 + 5) // never lowered
    expect(await store.update({ ...record, version: 2, name: 'renamed', lastUsedAt: null }, 1)).toBe('updated')
    // update keeps the stored lastUsedAt, as the hash does.
    expect(await store.get('k1')).toEqual({ ...record, version: 2, name: 'renamed', lastUsedAt: T0 + 10 })
    expect(await store.delete('k1')).toBe(true)
    expect(await raw.exists(`{${namespace}}:v:k1`)).toBe(0)
    expect(await store.get('k1')).toBeNull()
  })

  it('a snapshot that this version did not write is a StoreError, and touch then writes nothing', async () => {
    const { store, namespace } = recordingStore()
    await store.insert(makeRecord({ id: 'k1' }), null)
    await raw.set(`{${namespace}}:v:k1`, '{"id":"k1"}')
    await expect(store.get('k1')).rejects.toBeInstanceOf(StoreError)
    await expect(store.touch('k1', T0 + 10)).rejects.toBeInstanceOf(StoreError)
    expect(await raw.hget(`{${namespace}}:key:k1`, 'lastUsedAt')).toBeNull()
  })

  it('a failed MGET rejects every read of its batch with a StoreError', async () => {
    const store = new RedisStore({ client: async () => Promise.reject(new Error('connection lost')), namespace: 'kwsnap-down' })
    const results = await Promise.allSettled([store.get('a'), store.get('b'), store.get('c')])
    for (const result of results) {
      expect(result.status).toBe('rejected')
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StoreError)
      expect(((result as PromiseRejectedResult).reason as StoreError).operation).toBe('get')
    }
  })

  it('a 0.1.0 namespace verifies before migrate(); migrate() gives every record a snapshot, then one read each', async () => {
    const scratch = recordingStore()
    const legacy = recordingStore()
    const issuer = setup({ store: scratch.store })
    const issued = []
    for (let i = 0; i < 3; i++) issued.push(await issuer.keys.create({ name: `k${i}`, ownerId: 'u1', environment: 'live' }))
    await issuer.keys.close()
    for (const { key } of issued) await writeLegacyRedisRecord(raw, legacy.namespace, (await scratch.store.get(key.id))!)

    const { keys } = setup({ store: legacy.store })
    try {
      legacy.sent.length = 0
      for (const { token } of issued) expect((await keys.verify(token)).valid).toBe(true)
      // No snapshot yet: each read also looks at the hash.
      expect(legacy.sent.map((args) => args[0])).toEqual(['GET', 'EVALSHA', 'GET', 'EVALSHA', 'GET', 'EVALSHA'])
      const before = await legacy.store.get(issued[0]!.key.id)

      await legacy.store.migrate()
      expect(await raw.hget(`{${legacy.namespace}}:meta`, 'snapshots')).toBe('complete')
      for (const { key } of issued) expect(await raw.exists(`{${legacy.namespace}}:v:${key.id}`)).toBe(1)

      const migrated = new RedisStore({ client: raw, namespace: legacy.namespace })
      const after = setup({ store: migrated })
      try {
        for (const { token } of issued) expect((await after.keys.verify(token)).valid).toBe(true)
        expect(await migrated.get(issued[0]!.key.id)).toEqual(before)
        await keys.revoke(issued[0]!.key.id)
        expect(await after.keys.verify(issued[0]!.token)).toMatchObject({ valid: false, reason: 'revoked' })
      } finally {
        await after.keys.close()
      }
      // Idempotent: a migrated namespace costs one read.
      legacy.sent.length = 0
      await legacy.store.migrate()
      expect(legacy.sent.map((args) => args[0])).toEqual(['HMGET'])
    } finally {
      await keys.close()
    }
  })

  it('an interrupted snapshot walk resumes where it stopped', async () => {
    const { store, sent, namespace } = recordingStore()
    for (let i = 0; i < 150; i++) {
      await writeLegacyRedisRecord(raw, namespace, makeRecord({ id: `k${String(i).padStart(3, '0')}`, ownerId: 'u1', createdAt: T0 + i }))
    }
    // 0.1.0 namespaces have no meta hash; with layout 2 already there, only snapshots are written.
    await raw.hset(`{${namespace}}:meta`, 'layout', '2')
    // The link drops as the second batch's snapshots are sent.
    const secondBatch = `{${namespace}}:v:k149`
    const failing = new RedisStore({
      client: (args) => (args.includes(secondBatch) ? Promise.reject(new Error('link down')) : raw.call(args[0]!, ...args.slice(1))),
      namespace,
    })
    await expect(failing.migrate()).rejects.toBeInstanceOf(StoreError)
    const cursor = await raw.hget(`{${namespace}}:meta`, 'snapshotCursor')
    expect(cursor).not.toBeNull()
    expect(await raw.exists(`{${namespace}}:v:k000`)).toBe(1)
    expect(await raw.exists(`{${namespace}}:v:k149`)).toBe(0)

    sent.length = 0
    await store.migrate()
    const walked = sent.filter((args) => args[0] === 'ZRANGEBYLEX')
    expect(walked[0]?.[2]).toBe(`(${cursor}`)
    expect(await raw.hgetall(`{${namespace}}:meta`)).toEqual({ layout: '2', snapshots: 'complete' })
    for (let i = 0; i < 150; i++) expect(await store.get(`k${String(i).padStart(3, '0')}`), String(i)).not.toBeNull()
  })
})
