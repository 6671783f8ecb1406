import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { KeyManager } from '../../src/index.js'
import { SqliteStore } from '../../adapters/sql/index.js'
import { describeKeyStore } from '../conformance/describe-key-store.js'
import { makeRecord, makeRichRecord } from '../conformance/records.js'
import { uniqueSuffix } from '../support/services.js'
import { Database } from '../support/sqlite.js'
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

// One file database in WAL mode (as several processes would share it); each test has its own table.
const directory = mkdtempSync(join(tmpdir(), 'keywarden-sqlite-'))
const file = join(directory, 'keys.db')
const database = new Database(file)
database.pragma('journal_mode = WAL')
afterAll(() => {
  database.close()
  rmSync(directory, { recursive: true, force: true })
})

function freshStore(table = `kw_${uniqueSuffix()}`): SqliteStore {
  return new SqliteStore({ database, table })
}

async function drop(store: SqliteStore): Promise<void> {
  database.exec(`DROP TABLE IF EXISTS "${store.table}"; DROP TABLE IF EXISTS "${store.table}_usage"; DROP TABLE IF EXISTS "${store.table}_audit"`)
}

describe('SqliteStore', () => {
  describeKeyStore(
    'sqlite',
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

  it('ships adapters/sql/sqlite/migration.sql (published as migrations/sqlite.sql) with exactly the statements migrate() runs for the default table', async () => {
    const sent: string[] = []
    const recorder = {
      prepare: (sql: string) => (sent.push(sql), { reader: false, all: () => [], run: () => ({ changes: 0 }) }),
      transaction: () => expect.fail('migrate() needs no transaction'),
    }
    await new SqliteStore({ database: recorder }).migrate()
    expect(sent).toEqual(migrationFileStatements('sqlite'))
  })

  it('ignores "duplicate column name" for exactly the ADD COLUMN statements of the migration, and nothing else', async () => {
    const duplicate = (column: string) => Object.assign(new Error(`duplicate column name: ${column}`), { code: 'SQLITE_ERROR' })
    const failing = (fails: (sql: string) => boolean) => ({
      prepare: (sql: string) => {
        if (fails(sql)) throw duplicate('policy')
        return { reader: false, all: () => [], run: () => ({ changes: 0 }) }
      },
      transaction: () => expect.fail('migrate() needs no transaction'),
    })
    const addsColumn = (sql: string) => /^ALTER TABLE "keywarden_keys" ADD COLUMN /.test(sql)
    // The statements that may fail so are the file's ADD COLUMNs: six of them (policy, has_credits and
    // the four actor columns), and they are ignored.
    expect(migrationFileStatements('sqlite').filter(addsColumn)).toHaveLength(6)
    await new SqliteStore({ database: failing(addsColumn) }).migrate()
    // The same error from any other statement fails migrate().
    await expectStoreError(new SqliteStore({ database: failing((sql) => sql.startsWith('CREATE TABLE')) }).migrate(), 'migrate')
    // And any other error from an ADD COLUMN does too.
    const locked = {
      prepare: (sql: string) => {
        if (addsColumn(sql)) throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })
        return { reader: false, all: () => [], run: () => ({ changes: 0 }) }
      },
      transaction: () => expect.fail('migrate() needs no transaction'),
    }
    await expectStoreError(new SqliteStore({ database: locked }).migrate(), 'migrate')
  })

  it('accepts the shipped migration file applied by hand (table renamed) and migrate() afterwards', async () => {
    const store = freshStore()
    try {
      for (const statement of migrationFileStatements('sqlite')) database.exec(statement.replaceAll('keywarden_keys', store.table))
      await store.migrate()
      expect(await store.insert(makeRichRecord(), { ownerId: 'owner-ü', tenantId: 'tenant-1', limit: 1 })).toBe('inserted')
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
      expect(database.prepare(`SELECT id FROM "${first.table}"`).all()).toEqual([{ id: 'only-in-first' }])
    } finally {
      await drop(first)
      await drop(second)
    }
  })

  it('defaults the table name to keywarden_keys and does no I/O in the constructor', () => {
    const calls: unknown[] = []
    const recorder = {
      prepare: (sql: string) => (calls.push(sql), { reader: false, all: () => [], run: () => ({ changes: 0 }) }),
      transaction: () => expect.fail('no I/O'),
    }
    expect(new SqliteStore({ database: recorder }).table).toBe('keywarden_keys')
    expect(calls).toEqual([])
  })

  it('throws ConfigError for an invalid table name or database', () => {
    for (const table of INVALID_TABLE_NAMES) expectConfigError(() => new SqliteStore({ database, table: table as string }), 'table')
    for (const client of [undefined, null, {}, { prepare: () => undefined }, 'keys.db']) {
      expectConfigError(() => new SqliteStore({ database: client as never }), 'database')
    }
    expectConfigError(() => new SqliteStore(undefined as never), 'database')
  })

  it('wraps driver errors in StoreError with the cause and no SQL or values in the message', async () => {
    const store = freshStore()
    // The table was never created.
    const missing = await expectStoreError(store.insert(makeRichRecord(), null), 'insert', [store.table, ...richSecrets()])
    expect((missing.cause as { code?: string }).code).toBe('SQLITE_ERROR')
    await expectStoreError(store.list({ now: 0, order: 'asc', limit: 10, ownerId: 'owner-secret' }), 'list', ['owner-secret'])
    await expectStoreError(store.insert(makeRichRecord(), { ownerId: 'owner-ü', tenantId: 'tenant-1', limit: 5 }), 'insert', richSecrets())
    // A database that has been closed.
    const closedDatabase = new Database(':memory:')
    const closed = new SqliteStore({ database: closedDatabase })
    await closed.migrate()
    closedDatabase.close()
    await expectStoreError(closed.get('some-id'), 'get', ['some-id'])
    await expectStoreError(closed.insert(makeRecord(), { ownerId: 'o', tenantId: null, limit: 1 }), 'insert')
  })

  it('fails getSync (the verify read) with a StoreError naming get, thrown, and verify rejects with it', async () => {
    const thrown = (read: () => unknown): unknown => {
      try {
        read()
      } catch (error) {
        return error
      }
      return expect.fail('expected getSync to throw')
    }
    // The table was never created.
    const store = freshStore()
    await expectStoreError(Promise.reject(thrown(() => store.getSync('some-id'))), 'get', ['some-id', store.table])
    const closedDatabase = new Database(':memory:')
    const closed = new SqliteStore({ database: closedDatabase })
    await closed.migrate()
    const keys = new KeyManager({ store: closed, pepper: 'sqlite-test-pepper-0123456789abcdef' })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    expect((await keys.verify(token)).valid).toBe(true)
    closedDatabase.close()
    await expectStoreError(Promise.reject(thrown(() => closed.getSync('some-id'))), 'get', ['some-id'])
    await expectStoreError(keys.verify(token), 'get', [token])
  })

  it('reads through a better-sqlite3 look-alike without raw rows or get (prepare, all, run and transaction only)', async () => {
    const table = `kw_${uniqueSuffix()}`
    const lookAlike = {
      prepare: (sql: string) => {
        const statement = database.prepare(sql)
        return { reader: statement.reader, all: (...params: unknown[]) => statement.all(...params), run: (...params: unknown[]) => statement.run(...params) }
      },
      transaction: <T>(fn: () => T) => database.transaction(fn),
    }
    const store = new SqliteStore({ database: lookAlike, table })
    try {
      await store.migrate()
      const rich = makeRichRecord()
      await store.insert(rich, null)
      expect(store.getSync(rich.id)).toEqual(rich)
      expect(await store.get(rich.id)).toEqual(rich)
      expect(store.getSync('unknown')).toBeNull()
      const keys = new KeyManager({ store, pepper: 'sqlite-test-pepper-0123456789abcdef' })
      const { key, token } = await keys.create({ name: 'look-alike', environment: 'live' })
      expect(await keys.verify(token)).toMatchObject({ valid: true, key: { id: key.id, name: 'look-alike' } })
      await keys.revoke(key.id)
      expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })
      await keys.close()
    } finally {
      await drop(store)
    }
  })

  it('keeps instants and JSON exact, stored as integers and JSON text', async () => {
    const store = freshStore()
    try {
      await store.migrate()
      const rich = makeRichRecord()
      await store.insert(rich, null)
      expect(await store.get(rich.id)).toEqual(rich)
      const raw = database.prepare(`SELECT typeof(created_at) AS type, created_at, metadata_json FROM "${store.table}"`).get()
      expect(raw).toEqual({ type: 'integer', created_at: rich.createdAt, metadata_json: JSON.stringify(rich.metadata) })
    } finally {
      await drop(store)
    }
  })

  it('reads records when the database returns integers as bigints (safeIntegers)', async () => {
    const own = new Database(':memory:')
    own.defaultSafeIntegers(true)
    try {
      const store = new SqliteStore({ database: own })
      await store.migrate()
      const rich = makeRichRecord({ revokedAt: null })
      await store.insert(rich, { ownerId: 'owner-ü', tenantId: 'tenant-1', limit: 1 })
      expect(await store.get(rich.id)).toEqual(rich)
      expect(await store.insert(makeRecord({ id: 'other', ownerId: 'owner-ü', tenantId: 'tenant-1' }), { ownerId: 'owner-ü', tenantId: 'tenant-1', limit: 1 })).toBe('quota_exceeded')
    } finally {
      own.close()
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

  it('keeps quota inserts atomic across processes sharing the database file (BEGIN IMMEDIATE)', async () => {
    const OWNERS = 200
    const store = freshStore()
    await store.migrate()
    try {
      const racer = fileURLToPath(new URL('./sqlite-racer.ts', import.meta.url))
      const processes = Array.from({ length: 4 }, (_, i) =>
        spawn(process.execPath, ['--import', 'tsx', racer, file, store.table, `proc${i}`, String(OWNERS)], { stdio: ['pipe', 'pipe', 'inherit'] }),
      )
      const lines = processes.map((child) => {
        const output: string[] = []
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk))
        return {
          ready: new Promise<void>((resolve) => child.stdout.on('data', () => resolve())),
          done: new Promise<string>((resolve, reject) => {
            child.on('error', reject)
            child.on('close', (code) => (code === 0 ? resolve(output.join('')) : reject(new Error(`racer exited with ${code}`))))
          }),
        }
      })
      // Start every process's inserts at once, after all of them have opened the database.
      await Promise.all(lines.map((line) => line.ready))
      for (const child of processes) child.stdin.write('go\n')
      const outcomes = (await Promise.all(lines.map((line) => line.done))).map((output) => JSON.parse(output.split('\n').at(-2)!) as string[])
      // For each owner, exactly one process inserted.
      for (let owner = 0; owner < OWNERS; owner++) {
        expect(outcomes.filter((results) => results[owner] === 'inserted'), `owner${owner}`).toHaveLength(1)
      }
      expect(database.prepare(`SELECT count(*) AS n FROM "${store.table}"`).get()).toEqual({ n: OWNERS })
    } finally {
      await drop(store)
    }
  }, 30_000)

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
