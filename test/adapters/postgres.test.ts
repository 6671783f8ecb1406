import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PostgresStore } from '../../adapters/sql/index.js'
import { describeKeyStore } from '../conformance/describe-key-store.js'
import { makeRecord, makeRichRecord } from '../conformance/records.js'
import { postgresGate } from '../support/gates.js'
import { SERVICES, uniqueSuffix } from '../support/services.js'
import {
  expectBinaryIdentifiers,
  expectConfigError,
  expectEndToEnd,
  expectIdTakenBeforeQuota,
  expectStoreError,
  INVALID_TABLE_NAMES,
  migrationFileStatements,
  richSecrets,
} from './sql-shared.js'

const gate = await postgresGate()

// Every session runs in a time zone 12h45 ahead of UTC: instants must not notice.
const TIME_ZONE = 'Pacific/Chatham'
const config = { ...SERVICES.postgres, options: `-c TimeZone=${TIME_ZONE}` }
// More connections than parallel operations need to queue on, so the concurrency tests really race.
const pool = gate.available ? new pg.Pool({ ...config, max: 12 }) : undefined
// Open every connection up front: a cold pool staggers the first operations and hides races.
beforeAll(async () => {
  await Promise.all(Array.from({ length: 12 }, () => pool?.query('SELECT pg_sleep(0.05)')))
})
afterAll(() => pool?.end())

function db(): pg.Pool {
  if (!pool) throw new Error('PostgreSQL is not available')
  return pool
}

function freshStore(table = `kw_${uniqueSuffix()}`): PostgresStore {
  return new PostgresStore({ pool: db(), table })
}

async function drop(store: PostgresStore): Promise<void> {
  await db().query(`DROP TABLE IF EXISTS "${store.table}", "${store.table}_usage", "${store.table}_audit"`)
  await db().query(`DROP FUNCTION IF EXISTS "${store.table}_consume"`)
}

describe.skipIf(!gate.available)('PostgresStore', () => {
  describeKeyStore(
    'postgres',
    async () => {
      const store = freshStore()
      await store.migrate()
      return store
    },
    { teardown: drop },
  )

  it('runs migrate() twice without harm and keeps the data', async () => {
    const store = freshStore()
    try {
      await store.migrate()
      await store.insert(makeRecord({ id: 'kept' }), null)
      await store.migrate()
      expect(await store.get('kept')).toEqual(makeRecord({ id: 'kept' }))
    } finally {
      await drop(store)
    }
  })

  it('ships adapters/sql/postgres/migration.sql (published as migrations/postgres.sql) with exactly the statements migrate() runs for the default table', async () => {
    const sent: string[] = []
    const recorder = { query: async (text: string) => (sent.push(text), { rows: [], rowCount: 0 }) }
    await new PostgresStore({ pool: recorder }).migrate()
    expect(sent).toEqual(migrationFileStatements('postgres'))
    // Every statement is idempotent on its own: none relies on an error being ignored.
    expect(sent.filter((sql) => / ADD COLUMN (?!IF NOT EXISTS)/.test(sql))).toEqual([])
  })

  it('accepts the shipped migration file applied by hand (table renamed) and migrate() afterwards', async () => {
    const store = freshStore()
    try {
      for (const statement of migrationFileStatements('postgres')) await db().query(statement.replaceAll('keywarden_keys', store.table))
      await store.migrate()
      expect(await store.insert(makeRichRecord(), null)).toBe('inserted')
      expect(await store.get(makeRichRecord().id)).toEqual(makeRichRecord())
    } finally {
      await drop(store)
    }
  })

  it('uses the configured table name; two tables do not share keys', async () => {
    const first = freshStore()
    const second = freshStore()
    try {
      await first.migrate()
      await second.migrate()
      await first.insert(makeRecord({ id: 'only-in-first' }), null)
      expect(await second.get('only-in-first')).toBeNull()
      const { rows } = await db().query('SELECT id FROM ' + `"${first.table}"`)
      expect(rows).toEqual([{ id: 'only-in-first' }])
    } finally {
      await drop(first)
      await drop(second)
    }
  })

  it('defaults the table name to keywarden_keys and does no I/O in the constructor', () => {
    const calls: unknown[] = []
    const store = new PostgresStore({ pool: { query: async (...args: unknown[]) => (calls.push(args), { rows: [], rowCount: 0 }) } })
    expect(store.table).toBe('keywarden_keys')
    expect(calls).toEqual([])
  })

  it('throws ConfigError for an invalid table name or client', () => {
    for (const table of INVALID_TABLE_NAMES) expectConfigError(() => new PostgresStore({ pool: db(), table: table as string }), 'table')
    for (const client of [undefined, null, {}, { query: 'SELECT 1' }, 'postgres://localhost']) {
      expectConfigError(() => new PostgresStore({ pool: client as never }), 'pool')
    }
    expectConfigError(() => new PostgresStore(undefined as never), 'pool')
  })

  it('wraps driver errors in StoreError with the cause and no SQL or values in the message', async () => {
    const store = freshStore()
    // The table was never created.
    const missing = await expectStoreError(store.insert(makeRichRecord(), null), 'insert', [store.table, ...richSecrets()])
    expect((missing.cause as { code?: string }).code).toBe('42P01')
    await expectStoreError(store.list({ now: 0, order: 'asc', limit: 10, ownerId: 'owner-secret' }), 'list', ['owner-secret'])
    await expectStoreError(store.insert(makeRichRecord(), { ownerId: 'owner-ü', tenantId: 'tenant-1', limit: 5 }), 'insert', richSecrets())
    // A pool that has been ended.
    const ended = new pg.Pool(config)
    await ended.end()
    const closed = new PostgresStore({ pool: ended })
    await expectStoreError(closed.get('some-id'), 'get', ['some-id'])
    await expectStoreError(closed.migrate(), 'migrate')
  })

  it(`keeps instants and JSON exact with the session time zone at ${TIME_ZONE}`, async () => {
    const store = freshStore()
    try {
      await store.migrate()
      const { rows } = await db().query<{ TimeZone: string }>('SHOW TimeZone')
      expect(rows[0]?.TimeZone).toBe(TIME_ZONE)
      const rich = makeRichRecord()
      await store.insert(rich, null)
      expect(await store.get(rich.id)).toEqual(rich)
      const raw = await db().query(`SELECT created_at::text AS created, metadata_json FROM "${store.table}"`)
      expect(raw.rows[0]).toEqual({ created: String(rich.createdAt), metadata_json: JSON.stringify(rich.metadata) })
    } finally {
      await drop(store)
    }
  })

  it('compares and orders IDs and owners in binary: case and trailing spaces matter', async () => {
    const store = freshStore()
    try {
      await store.migrate()
      await expectBinaryIdentifiers(store)
    } finally {
      await drop(store)
    }
  })

  it('keeps quota inserts atomic through a single pg.Client', async () => {
    const client = new pg.Client(config)
    await client.connect()
    const store = new PostgresStore({ pool: client, table: `kw_${uniqueSuffix()}` })
    try {
      await store.migrate()
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => store.insert(makeRecord({ id: `c${i}`, ownerId: 'solo' }), { ownerId: 'solo', tenantId: null, limit: 2 })),
      )
      expect(results.filter((result) => result === 'inserted')).toHaveLength(2)
    } finally {
      await drop(store)
      await client.end()
    }
  })

  it('answers id_taken before quota_exceeded when both apply', async () => {
    const store = freshStore()
    try {
      await store.migrate()
      await expectIdTakenBeforeQuota(store)
    } finally {
      await drop(store)
    }
  })



  it('works end to end through KeyManager: create, verify, quota, rotate, revoke', async () => {
    const store = freshStore()
    try {
      await store.migrate()
      await expectEndToEnd(store)
    } finally {
      await drop(store)
    }
  })
})

describe('PostgresStore with a pool (no server needed)', () => {
  /** A pg.Pool stand-in whose client fails every statement starting with one of `failing`. */
  function fakePool(failing: string[]) {
    const sent: string[] = []
    const released: unknown[] = []
    const query = async (text: string) => {
      sent.push(text)
      if (failing.some((prefix) => text.startsWith(prefix))) throw Object.assign(new Error('failed'), { code: 'XX000' })
      return { rows: text.startsWith('SELECT count') ? [{ n: '0' }] : [], rowCount: 1 }
    }
    const pool = { query, totalCount: 0, connect: async () => ({ query, release: (destroy?: boolean | Error) => released.push(destroy) }) }
    return { store: new PostgresStore({ pool }), sent, released }
  }

  it('runs a quota insert on a checked-out client and releases it', async () => {
    const { store, sent, released } = fakePool([])
    expect(await store.insert(makeRecord({ ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 })).toBe('inserted')
    expect(sent.map((text) => text.split(' ')[0])).toEqual(['BEGIN', 'SELECT', 'SELECT', 'SELECT', 'INSERT', 'COMMIT'])
    expect(sent[1]).toMatch(/^SELECT pg_advisory_xact_lock/)
    expect(released).toEqual([false])
  })

  it('rolls back a failed transaction, and discards the client when even the rollback fails', async () => {
    const failedInsert = fakePool(['INSERT'])
    await expectStoreError(failedInsert.store.insert(makeRecord({ ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 }), 'insert')
    expect(failedInsert.sent.at(-1)).toBe('ROLLBACK')
    expect(failedInsert.released).toEqual([false])

    const failedRollback = fakePool(['INSERT', 'ROLLBACK'])
    await expectStoreError(failedRollback.store.insert(makeRecord({ ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 }), 'insert')
    expect(failedRollback.released).toEqual([true])
  })

  it('retries a quota insert that hit a deadlock', async () => {
    let deadlocks = 2
    const query = async (text: string) => {
      if (text.startsWith('INSERT') && deadlocks-- > 0) throw Object.assign(new Error('deadlock detected'), { code: '40P01' })
      return { rows: text.startsWith('SELECT count') ? [{ n: '0' }] : [], rowCount: 1 }
    }
    const pool = { query, totalCount: 0, connect: async () => ({ query, release: () => undefined }) }
    expect(await new PostgresStore({ pool }).insert(makeRecord({ ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 })).toBe('inserted')
    expect(deadlocks).toBe(-1)
  })
})
