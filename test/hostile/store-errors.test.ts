/**
 * Real writes that fail while the store holds the record's hash, on every store, through the public
 * API: PostgreSQL refuses the row by a CHECK constraint (its `detail` says "Failing row contains …",
 * hash included) or by a trigger that raises with the hash; MariaDB and SQLite by triggers whose
 * message carries the hash; Redis scripts find a key of the wrong type (ioredis puts every script
 * argument, the record's JSON with its hash, on its error; node-redis only the server's message); and
 * careless third-party stores over the memory store throw errors holding the record.
 *
 * For each failed create, update, rotate and write-behind `touch` (seen by `usage.onError`), and for
 * a failing invalidation channel (seen by `cache.onError`), what the caller gets carries no hash, no
 * digest, no secret, no token and no pepper in its message, stack, own fields or any cause, as
 * `util.inspect` and JSON show them; and the leak canary recorded that very error, so the run fails
 * if one ever does.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { RedisInvalidationChannel, RedisStore } from '../../adapters/redis/index.js'
import { MySqlStore, PostgresStore, SqliteStore } from '../../adapters/sql/index.js'
import { KeyManager, StoreError, type ApiKey, type KeyStore, type StoredKey } from '../../src/index.js'
import { BACKENDS, type BackendHandle } from '../support/backends.js'
import { recordStoreDump } from '../support/canary/dump.js'
import { HashIndex } from '../support/canary/hash-scan.js'
import { PepperIndex } from '../support/canary/pepper-scan.js'
import { fingerprint, LeakIndex } from '../support/canary/scan.js'
import { recordedSoFar, sinkOpen, type Entry } from '../support/canary/sink.js'
import { errorTextInFull } from '../support/canary/text.js'
import { redisGate } from '../support/gates.js'
import { deleteRedisNamespace, SERVICES, uniqueSuffix } from '../support/services.js'
import { Database } from '../support/sqlite.js'
import { manualClock } from '../helpers.js'

const PEPPER = 'store-errors-pepper-5Jq8Zt2Wm6Xr'
/** Refused by every sabotaged store: 20 characters or more. */
const LONG_NAME = 'a name the store refuses'

/** Makes the store's own writes fail: `writes` for insert and update (rotation included), `touches` for touch. */
type Sabotage = (what: 'writes' | 'touches') => Promise<void>

/** One store set up to fail, and what its failures look like once masked. */
interface Variant {
  readonly name: string
  readonly open: () => Promise<{ store: KeyStore; sabotage: Sabotage; cleanup: () => Promise<void> }>
  /** What the masked cause chain of a refused write or touch says (proves it is the failure provoked). */
  readonly refusedWrite: RegExp
  readonly refusedTouch: RegExp
}

// ---------------------------------------------------------------------------------------------------
// Sabotage, per store, from the outside: DDL on the table, or keys of the wrong type

async function onPostgres(sql: string): Promise<void> {
  const client = new pg.Client(SERVICES.postgres)
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

function postgresSabotage(table: string): Sabotage {
  return async (what) => {
    if (what === 'writes') {
      // The failing row, hash and previous hash included, is in the error's `detail`.
      await onPostgres(`ALTER TABLE "${table}" ADD CONSTRAINT "${table}_refuse" CHECK (length(name) < 20 AND previous_hash IS NULL)`)
      return
    }
    await onPostgres(`
      CREATE FUNCTION "${table}_refuse_touch"() RETURNS trigger AS $$
      BEGIN RAISE EXCEPTION 'refused %', OLD.hash; END $$ LANGUAGE plpgsql`)
    await onPostgres(`
      CREATE TRIGGER "${table}_touch" BEFORE UPDATE ON "${table}" FOR EACH ROW
      WHEN (NEW.last_used_at IS DISTINCT FROM OLD.last_used_at) EXECUTE FUNCTION "${table}_refuse_touch"()`)
  }
}

async function onMariaDb(sql: string): Promise<void> {
  const connection = await mysql.createConnection(SERVICES.mariadb)
  try {
    await connection.query(sql)
  } finally {
    await connection.end()
  }
}

function mariadbSabotage(table: string): Sabotage {
  // SIGNAL takes a variable, not an expression: the message with the hash is built first.
  const refuse = (condition: string, row: 'NEW' | 'OLD') =>
    `BEGIN DECLARE message VARCHAR(128); IF ${condition} THEN SET message = CONCAT('refused ', ${row}.hash); SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = message; END IF; END`
  return async (what) => {
    if (what === 'writes') {
      const refused = 'CHAR_LENGTH(NEW.name) >= 20 OR NEW.previous_hash IS NOT NULL'
      await onMariaDb(`CREATE TRIGGER \`${table}_insert\` BEFORE INSERT ON \`${table}\` FOR EACH ROW ${refuse(refused, 'NEW')}`)
      await onMariaDb(`CREATE TRIGGER \`${table}_update\` BEFORE UPDATE ON \`${table}\` FOR EACH ROW ${refuse(refused, 'NEW')}`)
      return
    }
    await onMariaDb(`CREATE TRIGGER \`${table}_touch\` BEFORE UPDATE ON \`${table}\` FOR EACH ROW ${refuse('NOT (NEW.last_used_at <=> OLD.last_used_at)', 'OLD')}`)
  }
}

function sqliteSabotage(database: InstanceType<typeof Database>, table: string): Sabotage {
  return async (what) => {
    if (what === 'writes') {
      const refused = 'length(NEW.name) >= 20 OR NEW.previous_hash IS NOT NULL'
      database.exec(`CREATE TRIGGER "${table}_insert" BEFORE INSERT ON "${table}" WHEN ${refused} BEGIN SELECT RAISE(ABORT, 'refused ' || NEW.hash); END`)
      database.exec(`CREATE TRIGGER "${table}_update" BEFORE UPDATE ON "${table}" WHEN ${refused} BEGIN SELECT RAISE(ABORT, 'refused ' || NEW.hash); END`)
      return
    }
    database.exec(`CREATE TRIGGER "${table}_touch" BEFORE UPDATE ON "${table}" WHEN NEW.last_used_at IS NOT OLD.last_used_at BEGIN SELECT RAISE(ABORT, 'refused ' || OLD.hash); END`)
  }
}

/** Every write script checks its keys' types first: a string where a sorted set belongs refuses the write. */
function redisSabotage(namespace: string, redis: () => Redis, keyIds: () => readonly string[]): Sabotage {
  return async (what) => {
    const client = redis()
    if (what === 'writes') {
      await client.del(`{${namespace}}:idx:expiry`)
      await client.set(`{${namespace}}:idx:expiry`, 'not a sorted set')
      return
    }
    for (const id of keyIds()) {
      await client.del(`{${namespace}}:key:${id}`)
      await client.set(`{${namespace}}:key:${id}`, 'not a hash')
    }
  }
}

/**
 * A third-party store over the memory store that reports failures carelessly: the write goes through,
 * then it throws an error holding the record (message, fields, causes), as a store waiting for a
 * replica's acknowledgement might. `wrap` throws it inside keywarden's own StoreError instead.
 */
function carelessStore(inner: KeyStore, wrap: boolean): { store: KeyStore; sabotage: Sabotage } {
  const refusing = new Set<'writes' | 'touches'>()
  const fail = (operation: string, record: StoredKey | null): never => {
    const text = JSON.stringify(record)
    const raw = Object.assign(new Error(`replica did not acknowledge ${operation} of ${text}`), {
      record,
      hash: record?.hash,
      sql: `UPDATE keys SET hash = '${record?.hash}'`,
      cause: new AggregateError([new Error(`hash ${record?.hash}`), new Error(`previous ${record?.previousHash}`)], `while writing ${text}`),
    })
    throw wrap ? new StoreError(operation, { cause: raw }) : raw
  }
  const store: KeyStore = {
    insert: async (record, quota) => {
      const outcome = await inner.insert(record, quota)
      return refusing.has('writes') ? fail('insert', record) : outcome
    },
    update: async (record, version) => {
      const outcome = await inner.update(record, version)
      return refusing.has('writes') ? fail('update', record) : outcome
    },
    touch: async (id, at) => (refusing.has('touches') ? fail('touch', await inner.get(id)) : inner.touch(id, at)),
    get: (id) => inner.get(id),
    delete: (id) => inner.delete(id),
    list: (query) => inner.list(query),
  }
  return { store, sabotage: async (what) => void refusing.add(what) }
}

// ---------------------------------------------------------------------------------------------------
// The variants

const gates = new Map(await Promise.all(BACKENDS.map(async (backend) => [backend.name, await backend.gate()] as const)))
const backend = (name: string) => BACKENDS.find((candidate) => candidate.name === name)!
let sabotageClient: Redis | undefined
const redis = () => (sabotageClient ??= new Redis(SERVICES.redis))
/** Key IDs created in each variant, for sabotage that names record keys. */
const created = new Map<string, string[]>()

async function fromBackend(name: string, sabotage: (handle: BackendHandle) => Sabotage) {
  const handle = await backend(name).open()
  return { store: handle.store, sabotage: sabotage(handle), cleanup: () => handle.cleanup() }
}

const VARIANTS: readonly (Variant & { readonly available: boolean })[] = [
  {
    name: 'memory, a careless store throwing its own errors',
    available: true,
    open: async () => {
      const handle = await backend('memory').open()
      return { ...carelessStore(handle.store, false), cleanup: () => handle.cleanup() }
    },
    refusedWrite: /replica did not acknowledge (insert|update) of .*\[redacted hash\]/,
    refusedTouch: /replica did not acknowledge touch of .*\[redacted hash\]/,
  },
  {
    name: "memory, a careless store wrapping them in keywarden's StoreError",
    available: true,
    open: async () => {
      const handle = await backend('memory').open()
      return { ...carelessStore(handle.store, true), cleanup: () => handle.cleanup() }
    },
    refusedWrite: /replica did not acknowledge (insert|update) of .*\[redacted hash\]/,
    refusedTouch: /replica did not acknowledge touch of .*\[redacted hash\]/,
  },
  {
    name: 'redis through ioredis',
    available: gates.get('redis')!.available,
    open: () => fromBackend('redis', (handle) => redisSabotage((handle.store as RedisStore).namespace, redis, () => created.get('redis through ioredis') ?? [])),
    refusedWrite: /WRONGTYPE keywarden: the expiry index holds a string/,
    refusedTouch: /WRONGTYPE keywarden: the record holds a string/,
  },
  {
    name: 'redis through node-redis',
    available: gates.get('redis')!.available,
    open: async () => {
      const client = await createClient({ socket: { host: SERVICES.redis.host, port: SERVICES.redis.port } }).connect()
      const namespace = `kwt${uniqueSuffix()}`
      const store = new RedisStore({ client, namespace })
      const cleanup = async () => {
        await recordStoreDump(store, 'node-redis store, before cleanup')
        await deleteRedisNamespace(redis(), namespace)
        await client.quit()
      }
      return { store, sabotage: redisSabotage(namespace, redis, () => created.get('redis through node-redis') ?? []), cleanup }
    },
    refusedWrite: /WRONGTYPE keywarden: the expiry index holds a string/,
    refusedTouch: /WRONGTYPE keywarden: the record holds a string/,
  },
  {
    name: 'postgres',
    available: gates.get('postgres')!.available,
    open: () => fromBackend('postgres', (handle) => postgresSabotage((handle.store as PostgresStore).table)),
    refusedWrite: /violates check constraint "kwt_\w+_refuse"/,
    refusedTouch: /refused \[redacted hash\]/,
  },
  {
    name: 'mariadb',
    available: gates.get('mariadb')!.available,
    open: () => fromBackend('mariadb', (handle) => mariadbSabotage((handle.store as MySqlStore).table)),
    refusedWrite: /refused \[redacted hash\]/,
    refusedTouch: /refused \[redacted hash\]/,
  },
  {
    name: 'sqlite',
    available: true,
    open: async () => {
      const directory = mkdtempSync(join(tmpdir(), 'keywarden-store-errors-'))
      const database = new Database(join(directory, 'keys.db'))
      const table = `kwt_${uniqueSuffix()}`
      const store = new SqliteStore({ database, table })
      await store.migrate()
      const cleanup = async () => {
        await recordStoreDump(store, 'sqlite store, before cleanup')
        database.close()
        rmSync(directory, { recursive: true, force: true })
      }
      return { store, sabotage: sqliteSabotage(database, table), cleanup }
    },
    refusedWrite: /refused \[redacted hash\]/,
    refusedTouch: /refused \[redacted hash\]/,
  },
]

// ---------------------------------------------------------------------------------------------------
// What must not be in an error, and proof that the canary saw it

/** A spy, not a mock: every call reaches the store; it keeps the hashes the store was handed. */
function witnessed(inner: KeyStore): { store: KeyStore; hashes: Set<string> } {
  const hashes = new Set<string>()
  const keep = (record: StoredKey) => {
    hashes.add(record.hash)
    if (record.previousHash !== null) hashes.add(record.previousHash)
  }
  const store: KeyStore = {
    insert: (record, quota) => (keep(record), inner.insert(record, quota)),
    update: (record, version) => (keep(record), inner.update(record, version)),
    get: (id) => inner.get(id),
    delete: (id) => inner.delete(id),
    list: (query) => inner.list(query),
    touch: (id, at) => inner.touch(id, at),
  }
  return { store, hashes }
}

const digestOf = (hash: string) => hash.slice(hash.lastIndexOf('$') + 1)
const secretOf = (token: string) => token.slice(-38, -6)

/**
 * Asserts that `text` holds none of the hashes, tokens and the pepper, in any form the canary knows. A
 * failure names what was found by fingerprint only, so the test's own report does not print it.
 */
function expectNoStoredValue(text: string, hashes: Iterable<string>, tokens: readonly string[]): void {
  const digests = [...hashes].map(digestOf)
  expect(digests.length).toBeGreaterThan(0)
  const lower = text.toLowerCase()
  const found = [
    ...digests.filter((digest) => lower.includes(digest)).map((digest) => `digest ${fingerprint(digest)}`),
    ...tokens.filter((token) => text.includes(secretOf(token))).map((token) => `secret ${fingerprint(secretOf(token))}`),
    ...(text.includes(PEPPER) ? ['the pepper'] : []),
    ...new HashIndex(digests.map((digest) => ({ digest, stored: digest, writtenAt: 'this test' }))).scan(text).map((hit) => `hash ${fingerprint(hit.needle.digest)} as ${hit.form}`),
    ...new LeakIndex(tokens.map((token) => ({ secret: secretOf(token), token, issuedAt: 'this test' }))).scan(text).map((hit) => `secret ${fingerprint(hit.needle.secret)} as ${hit.form}`),
    ...new PepperIndex([{ bytes: Buffer.from(PEPPER), source: 'this test' }]).scan(text).map((hit) => `the pepper as ${hit.form}`),
  ]
  expect(found).toEqual([])
}

/** The canary entries recorded from now on. */
function since(): () => Entry[] {
  const start = recordedSoFar().length
  return () => recordedSoFar().slice(start)
}

/**
 * The canary's record of the error: the KeyManager's, or the store's when the store threw that very
 * StoreError (the canary scans one text once, where it first appeared).
 */
function canaryEntryFor(entries: readonly Entry[], operation: string, failure: RegExp): Entry | undefined {
  return entries.find((entry) => entry.k === 'error' && entry.x.includes(`The key store failed during '${operation}'`) && failure.test(entry.x))
}

/** The messages of an error and every cause and aggregated error under it. */
function messages(error: unknown, depth = 0): string {
  if (!(error instanceof Error) || depth > 10) return ''
  const inner = (error as { errors?: unknown }).errors
  return [error.message, messages(error.cause, depth + 1), ...(Array.isArray(inner) ? inner.map((item) => messages(item, depth + 1)) : [])].join('\n')
}

for (const variant of VARIANTS) {
  describe.skipIf(!variant.available)(`store errors carry no stored value: ${variant.name}`, () => {
    const time = manualClock()
    const usageErrors: unknown[] = []
    let opened: Awaited<ReturnType<Variant['open']>>
    let hashes: Set<string>
    let keys: KeyManager
    let existing: ApiKey
    let token: string

    beforeAll(async () => {
      opened = await variant.open()
      const witness = witnessed(opened.store)
      hashes = witness.hashes
      keys = new KeyManager({
        store: witness.store,
        prefix: 'acme',
        environments: ['live'],
        pepper: PEPPER,
        expiry: { default: '90d' },
        clock: time.clock,
        // Flushed by the test only: a timer's flush must not write the last use before the sabotage.
        usage: { flushInterval: '1h', onError: (error) => void usageErrors.push(error) },
      })
      ;({ key: existing, token } = await keys.create({ name: 'existing', ownerId: 'owner-1' }))
      created.set(variant.name, [existing.id])
      expect((await keys.verify(token)).valid).toBe(true)
      await opened.sabotage('writes')
    })

    afterAll(async () => {
      await keys?.close()
      await opened?.cleanup()
    })

    /** Runs `call`, which must fail with a StoreError during `operation`; checks it and the canary's record of it. */
    async function expectMaskedFailure(call: () => Promise<unknown>, operation: string): Promise<void> {
      const recorded = since()
      const error = await call().then(
        () => expect.unreachable(`${operation} succeeded`),
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(StoreError)
      expect(error).toMatchObject({ code: 'store_failed', operation, message: `The key store failed during '${operation}'` })
      expect(messages(error)).toMatch(variant.refusedWrite)
      expectNoStoredValue(errorTextInFull(error), hashes, [token])
      if (!sinkOpen()) return
      const entry = canaryEntryFor(recorded(), operation, variant.refusedWrite)
      expect(entry, 'the leak canary recorded the error').toBeDefined()
      expectNoStoredValue(entry!.x, hashes, [token])
    }

    it('a refused create', async () => {
      await expectMaskedFailure(() => keys.create({ name: LONG_NAME, ownerId: 'owner-1' }), 'insert')
    })

    it('a refused update', async () => {
      await expectMaskedFailure(() => keys.update(existing.id, { name: LONG_NAME }), 'update')
    })

    it('a refused rotation, with the old hash kept as previous hash', async () => {
      await expectMaskedFailure(() => keys.rotate(existing.id, { gracePeriod: '1h' }), 'update')
    })

    it('a refused write-behind touch, as usage.onError hears of it', async () => {
      const recorded = since()
      expect((await keys.verify(token)).valid).toBe(true)
      await opened.sabotage('touches')
      usageErrors.length = 0
      await keys.flush()
      expect(usageErrors).toHaveLength(1)
      const [error] = usageErrors
      expect(error).toBeInstanceOf(StoreError)
      expect(error).toMatchObject({ code: 'store_failed', operation: 'touch' })
      expect(messages(error)).toMatch(variant.refusedTouch)
      expectNoStoredValue(errorTextInFull(error), hashes, [token])
      if (!sinkOpen()) return
      const entry = canaryEntryFor(recorded(), 'touch', variant.refusedTouch)
      expect(entry, 'the leak canary recorded the error').toBeDefined()
      expectNoStoredValue(entry!.x, hashes, [token])
    })
  })
}

describe.skipIf(!(await redisGate()).available)('what reaches cache.onError from a failing invalidation channel', () => {
  it('carries no stored value either, and the canary sees it', async () => {
    const store = witnessed(new MemoryStore())
    // A publisher whose connection is gone: PUBLISH fails at once (no offline queue).
    const publisher = new Redis({ ...SERVICES.redis, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
    // Its own connection attempts fail the same way; only what the KeyManager hands on is under test.
    publisher.on('error', () => undefined)
    const channel = new RedisInvalidationChannel({ client: publisher, channel: `kwt${uniqueSuffix()}` })
    const channelErrors: unknown[] = []
    const keys = new KeyManager({ store: store.store, prefix: 'acme', environments: ['live'], pepper: PEPPER, cache: { ttl: '10s', channel, onError: (error) => void channelErrors.push(error) } })
    const recorded = since()
    try {
      const { key, token } = await keys.create({ name: 'cached' })
      await keys.update(key.id, { name: 'renamed' })
      await new Promise((resolve) => setImmediate(resolve))
      expect(channelErrors.length).toBeGreaterThan(0)
      for (const error of channelErrors) {
        expect(error).toBeInstanceOf(Error)
        expectNoStoredValue(errorTextInFull(error), store.hashes, [token])
      }
      if (!sinkOpen()) return
      const entries = recorded().filter((entry) => entry.k === 'error' && entry.d === 'error handed to cache.onError (channel.publish rejected)')
      expect(entries.length, 'the leak canary recorded the error').toBeGreaterThan(0)
      for (const entry of entries) expectNoStoredValue(entry.x, store.hashes, [token])
    } finally {
      await keys.close()
      publisher.disconnect()
    }
  })
})

afterAll(async () => {
  await Promise.all(BACKENDS.map((candidate) => candidate.close()))
  sabotageClient?.disconnect()
})
