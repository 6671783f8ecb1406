/**
 * The SQL stores' usage table and the 0.2.0 schema change, per database, beyond the conformance suite:
 * the upgrade of a table created by 0.1.0, consumptions raced by two stores on separate pools (or
 * database handles, or processes), dry runs that create nothing, purge, lock order, and the same
 * numbers as the reference MemoryStore over a long mixed sequence. Then consumeIfCurrent: against the
 * reference at every step of a seeded sequence with guard failures, raced, with a key updated under
 * load, statement by statement (one on PostgreSQL, its consume function, which a last block checks on
 * its own: created on an upgraded table, replaced, dropped).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { MySqlStore, PostgresStore, SqliteStore, type SqlStore } from '../../adapters/sql/index.js'
import { COLUMNS } from '../../adapters/sql/shared/columns.js'
import { insertParams } from '../../adapters/sql/shared/row-mapping.js'
import type { SqlValue } from '../../adapters/sql/shared/seams.js'
import type { CreditAdjustment, CreditPool, GuardedUsageRequest, RateCounter, UsageRequest } from '../../src/limits/usage-store.js'
import { referenceConsumeIfCurrent, seededRandom } from '../support/differential.js'
import type { KeyManager, LimitsOptions } from '../../src/index.js'
import { makeRecord, makeRichRecord, T0, type MutableStoredKey } from '../conformance/records.js'
import { setup } from '../helpers.js'
import { mariadbGate, postgresGate } from '../support/gates.js'
import { SERVICES, uniqueSuffix } from '../support/services.js'
import { Database } from '../support/sqlite.js'
import { postgresDialect } from '../../adapters/sql/postgres/dialect.js'
import { expectStoreError, migrationFileStatements } from './sql-shared.js'

/** One database as these tests drive it: two independent clients, raw SQL beside the store, cleanup. */
interface Backend {
  readonly name: string
  readonly available: boolean
  /** A store on the first client. */
  store(table: string): SqlStore
  /** A store on the second client: another pool (another database handle) on the same database. */
  otherStore(table: string): SqlStore
  /** Runs raw SQL on a client of its own; `$n` placeholders (rewritten to `?` where needed). */
  query(sql: string, params?: readonly SqlValue[]): Promise<Record<string, unknown>[]>
  /** Quotes an identifier. */
  quote(name: string): string
  /** Binds a boolean. */
  boolean(value: boolean): SqlValue
  /** The statements 0.1.0's migrate() ran (adapters/sql/migrations/<db>.sql at a9a673f), for `table`. */
  legacySchema(table: string): string[]
  /**
   * A store on the first client that records every statement it sends, by its first words
   * (`BEGIN`, `COMMIT` and the like included), and what a locking read locks with.
   */
  counting(table: string): { readonly store: SqlStore; readonly sent: string[] }
  /** The statements of one guarded consumption that finds every row (`consumeIfCurrent`), by {@link statementName}. */
  guardedStatements(table: string): string[]
  drop(table: string): Promise<void>
  close(): Promise<void>
}

// 0.1.0's keys table, verbatim but for the table name (git show a9a673f:adapters/sql/migrations/<db>.sql).
const LEGACY_POSTGRES = (t: string) => [
  `CREATE TABLE IF NOT EXISTS "${t}" (
  id VARCHAR(256) COLLATE "C" NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT,
  owner_id VARCHAR(256) COLLATE "C",
  tenant_id VARCHAR(256) COLLATE "C",
  environment VARCHAR(256) COLLATE "C" NOT NULL,
  key_type VARCHAR(256) COLLATE "C",
  scopes_json TEXT NOT NULL,
  roles_json TEXT NOT NULL,
  groups_json TEXT NOT NULL,
  metadata_json TEXT NOT NULL,
  start TEXT NOT NULL,
  hash TEXT NOT NULL,
  previous_hash TEXT,
  previous_hash_expires_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  expires_at BIGINT,
  last_used_at BIGINT,
  enabled BOOLEAN NOT NULL,
  revoked_at BIGINT,
  expiry_notice_for BIGINT,
  version INTEGER NOT NULL
)`,
  `CREATE INDEX IF NOT EXISTS "${t}_owner_idx" ON "${t}" (owner_id, created_at, id)`,
  `CREATE INDEX IF NOT EXISTS "${t}_tenant_idx" ON "${t}" (tenant_id, created_at, id)`,
  `CREATE INDEX IF NOT EXISTS "${t}_created_idx" ON "${t}" (created_at, id)`,
  `CREATE INDEX IF NOT EXISTS "${t}_expires_idx" ON "${t}" (expires_at)`,
]

const LEGACY_MYSQL = (t: string) => [
  `CREATE TABLE IF NOT EXISTS \`${t}\` (
  id VARBINARY(1024) NOT NULL,
  name TEXT NOT NULL,
  description TEXT NULL,
  owner_id VARBINARY(1024) NULL,
  tenant_id VARBINARY(1024) NULL,
  environment VARBINARY(1024) NOT NULL,
  key_type VARBINARY(1024) NULL,
  scopes_json MEDIUMTEXT NOT NULL,
  roles_json MEDIUMTEXT NOT NULL,
  groups_json MEDIUMTEXT NOT NULL,
  metadata_json MEDIUMTEXT NOT NULL,
  start TEXT NOT NULL,
  hash TEXT NOT NULL,
  previous_hash TEXT NULL,
  previous_hash_expires_at BIGINT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  expires_at BIGINT NULL,
  last_used_at BIGINT NULL,
  enabled BOOLEAN NOT NULL,
  revoked_at BIGINT NULL,
  expiry_notice_for BIGINT NULL,
  version INT NOT NULL,
  PRIMARY KEY (id),
  INDEX \`${t}_owner_idx\` (owner_id, created_at, id),
  INDEX \`${t}_tenant_idx\` (tenant_id, created_at, id),
  INDEX \`${t}_created_idx\` (created_at, id),
  INDEX \`${t}_expires_idx\` (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  `CREATE TABLE IF NOT EXISTS \`${t}_locks\` (
  owner_id VARBINARY(1024) NOT NULL,
  PRIMARY KEY (owner_id)
) ENGINE=InnoDB`,
]

const LEGACY_SQLITE = (t: string) => [
  `CREATE TABLE IF NOT EXISTS "${t}" (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT,
  owner_id TEXT,
  tenant_id TEXT,
  environment TEXT NOT NULL,
  key_type TEXT,
  scopes_json TEXT NOT NULL,
  roles_json TEXT NOT NULL,
  groups_json TEXT NOT NULL,
  metadata_json TEXT NOT NULL,
  start TEXT NOT NULL,
  hash TEXT NOT NULL,
  previous_hash TEXT,
  previous_hash_expires_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER,
  last_used_at INTEGER,
  enabled INTEGER NOT NULL,
  revoked_at INTEGER,
  expiry_notice_for INTEGER,
  version INTEGER NOT NULL
)`,
  `CREATE INDEX IF NOT EXISTS "${t}_owner_idx" ON "${t}" (owner_id, created_at, id)`,
  `CREATE INDEX IF NOT EXISTS "${t}_tenant_idx" ON "${t}" (tenant_id, created_at, id)`,
  `CREATE INDEX IF NOT EXISTS "${t}_created_idx" ON "${t}" (created_at, id)`,
  `CREATE INDEX IF NOT EXISTS "${t}_expires_idx" ON "${t}" (expires_at)`,
]

/** A statement by its first two words, and by the lock a locking read takes. */
function statementName(sql: string): string {
  const lock = / (FOR UPDATE|FOR SHARE|LOCK IN SHARE MODE)$/.exec(sql)?.[1]
  return [...sql.trim().split(/\s+/).slice(0, 2), ...(lock === undefined ? [] : [lock])].join(' ')
}

/** 0.1.0's columns: the first 23 of today's, in the same order. */
const LEGACY_COLUMNS = COLUMNS.slice(0, COLUMNS.indexOf('version') + 1)

async function postgresBackend(): Promise<Backend> {
  const gate = await postgresGate()
  // Two pools: the racing stores share no connection (and no client-side queue).
  const pools = gate.available ? [new pg.Pool({ ...SERVICES.postgres, max: 6 }), new pg.Pool({ ...SERVICES.postgres, max: 6 })] : []
  const pool = (index: number) => pools[index] ?? expect.fail('PostgreSQL is not available')
  return {
    name: 'PostgreSQL',
    available: gate.available,
    store: (table) => new PostgresStore({ pool: pool(0), table }),
    otherStore: (table) => new PostgresStore({ pool: pool(1), table }),
    query: async (sql, params = []) => (await pool(0).query(sql, [...params])).rows,
    quote: (name) => `"${name}"`,
    boolean: (value) => value,
    legacySchema: LEGACY_POSTGRES,
    counting: (table) => {
      const sent: string[] = []
      const counted = <T extends pg.Pool | pg.PoolClient>(client: T) => (text: string, values?: unknown[]) => (sent.push(statementName(text)), client.query(text, values))
      const wrapped = {
        query: counted(pool(0)),
        totalCount: 0,
        connect: async () => {
          const client = await pool(0).connect()
          return { query: counted(client), release: (destroy?: boolean | Error) => client.release(destroy) }
        },
      }
      return { store: new PostgresStore({ pool: wrapped, table }), sent }
    },
    guardedStatements: () => ['SELECT applied,'],
    drop: async (table) => {
      await pool(0).query(`DROP TABLE IF EXISTS "${table}", "${table}_usage", "${table}_audit"`)
      await pool(0).query(`DROP FUNCTION IF EXISTS "${table}_consume"`)
    },
    close: async () => void (await Promise.all(pools.map((each) => each.end()))),
  }
}

async function mysqlBackend(): Promise<Backend> {
  const gate = await mariadbGate()
  const pools = gate.available ? [mysql.createPool({ ...SERVICES.mariadb, connectionLimit: 6 }), mysql.createPool({ ...SERVICES.mariadb, connectionLimit: 6 })] : []
  const pool = (index: number) => pools[index] ?? expect.fail('MariaDB is not available')
  return {
    name: 'MariaDB',
    available: gate.available,
    store: (table) => new MySqlStore({ pool: pool(0), table }),
    otherStore: (table) => new MySqlStore({ pool: pool(1), table }),
    query: async (sql, params = []) => {
      const [rows] = await pool(0).query(sql.replace(/\$\d+/g, '?'), [...params])
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : []
    },
    quote: (name) => `\`${name}\``,
    boolean: (value) => value,
    legacySchema: LEGACY_MYSQL,
    counting: (table) => {
      const sent: string[] = []
      const execute = (client: mysql.Pool | mysql.PoolConnection) => (sql: string, values?: (string | number | boolean | null)[]) =>
        (sent.push(statementName(sql)), client.execute(sql, values) as Promise<[unknown, unknown]>)
      const wrapped = {
        execute: execute(pool(0)),
        getConnection: async () => {
          const connection = await pool(0).getConnection()
          return {
            execute: execute(connection),
            query: (sql: string) => connection.query(sql) as Promise<[unknown, unknown]>,
            beginTransaction: () => (sent.push('START TRANSACTION'), connection.beginTransaction()),
            commit: () => (sent.push('COMMIT'), connection.commit()),
            rollback: () => (sent.push('ROLLBACK'), connection.rollback()),
            release: () => connection.release(),
            destroy: () => connection.destroy(),
          }
        },
      }
      return { store: new MySqlStore({ pool: wrapped, table }), sent }
    },
    guardedStatements: (table) => ['START TRANSACTION', 'SELECT id, LOCK IN SHARE MODE', 'SELECT kind, FOR UPDATE', `UPDATE \`${table}_usage\``, 'COMMIT'],
    drop: async (table) => void (await pool(0).query(`DROP TABLE IF EXISTS \`${table}\`, \`${table}_locks\`, \`${table}_usage\`, \`${table}_audit\``)),
    close: async () => void (await Promise.all(pools.map((each) => each.end()))),
  }
}

function sqliteBackend(file: string): Backend & { readonly file: string } {
  // Two handles on one file, as two processes would hold it (WAL mode; each waits for the other's lock).
  const handles = [new Database(file), new Database(file)]
  for (const handle of handles) {
    handle.pragma('journal_mode = WAL')
    handle.pragma('busy_timeout = 5000')
  }
  const [first, second] = handles as [Database, Database]
  return {
    name: 'SQLite',
    available: true,
    file,
    store: (table) => new SqliteStore({ database: first, table }),
    otherStore: (table) => new SqliteStore({ database: second, table }),
    query: async (sql, params = []) => {
      const statement = first.prepare(sql.replace(/\$\d+/g, '?'))
      if (statement.reader) return statement.all(...params) as Record<string, unknown>[]
      statement.run(...params)
      return []
    },
    quote: (name) => `"${name}"`,
    boolean: (value) => (value ? 1 : 0),
    legacySchema: LEGACY_SQLITE,
    counting: (table) => {
      const sent: string[] = []
      // The store prepares each statement once and runs it with all() or run(): count the runs.
      const database = {
        prepare: (sql: string) => {
          const statement = first.prepare(sql)
          const name = statementName(sql)
          return {
            reader: statement.reader,
            all: (...params: unknown[]) => (sent.push(name), statement.all(...params)),
            run: (...params: unknown[]) => (sent.push(name), statement.run(...params)),
          }
        },
        transaction: <T>(body: () => T) => {
          const transaction = first.transaction(() => {
            sent.push('BEGIN IMMEDIATE')
            const result = body()
            sent.push('COMMIT')
            return result
          })
          return { immediate: () => transaction.immediate() }
        },
      }
      return { store: new SqliteStore({ database, table }), sent }
    },
    guardedStatements: () => ['BEGIN IMMEDIATE', 'SELECT id,', 'SELECT kind,', 'INSERT INTO', 'COMMIT'],
    drop: async (table) => void first.exec(`DROP TABLE IF EXISTS "${table}"; DROP TABLE IF EXISTS "${table}_usage"; DROP TABLE IF EXISTS "${table}_audit"`),
    close: async () => {
      for (const handle of handles) handle.close()
    },
  }
}

const directory = mkdtempSync(join(tmpdir(), 'keywarden-sql-usage-'))
const sqlite = sqliteBackend(join(directory, 'usage.db'))
const backends = [await postgresBackend(), await mysqlBackend(), sqlite]
afterAll(async () => {
  await Promise.all(backends.map((backend) => backend.close()))
  rmSync(directory, { recursive: true, force: true })
})

const DAY = 86_400_000
const WINDOW_START = T0 - (T0 % DAY)
const window = (id: string, limit: number): RateCounter => ({ id, algorithm: 'fixed-window', limit, capacity: limit, windowMs: DAY })
const bucket = (id: string, limit: number, windowMs = 3_600_000): RateCounter => ({ id, algorithm: 'token-bucket', limit, capacity: limit, windowMs })
const pool = (id: string, initial: number, refill: CreditPool['refill'] = null): CreditPool => ({ id, initial, refill })
const request = (overrides: Partial<UsageRequest>): UsageRequest => ({ now: T0, cost: 1, commit: true, rate: [], credits: null, ...overrides })

function countOf<T>(values: readonly T[], value: T): number {
  return values.filter((each) => each === value).length
}

for (const backend of backends) {
  describe.skipIf(!backend.available)(`${backend.name}: usage table and 0.2.0 schema`, () => {
    /** Runs `body` with a fresh, migrated table name; drops the tables afterwards. */
    async function withTable(body: (table: string) => Promise<void>, migrate = true): Promise<void> {
      const table = `kwu_${uniqueSuffix()}`
      try {
        if (migrate) await backend.store(table).migrate()
        await body(table)
      } finally {
        await backend.drop(table)
      }
    }

    async function usageRows(table: string): Promise<{ rate: number; credits: number }> {
      const rows = await backend.query(`SELECT kind, expires_at FROM ${backend.quote(`${table}_usage`)}`)
      const kinds = rows.map((row) => (Buffer.isBuffer(row['kind']) ? row['kind'].toString('utf8') : row['kind']))
      return { rate: countOf(kinds, 'rate'), credits: countOf(kinds, 'credits') }
    }

    /** An INSERT as 0.1.0 wrote it: its 23 columns, none of the new ones. */
    async function insertAsLegacy(table: string, id: string): Promise<void> {
      const values = insertParams(makeRecord({ id }), backend.boolean).slice(0, LEGACY_COLUMNS.length)
      const placeholders = values.map((_, index) => `$${index + 1}`).join(', ')
      await backend.query(`INSERT INTO ${backend.quote(table)} (${LEGACY_COLUMNS.join(', ')}) VALUES (${placeholders})`, values)
    }

    it('upgrades a table created by 0.1.0: migrate() twice, old rows read policy null and hasCredits false, and both columns update', async () => {
      await withTable(async (table) => {
        for (const statement of backend.legacySchema(table)) await backend.query(statement)
        await insertAsLegacy(table, 'from-0.1.0')
        const store = backend.store(table)
        await store.migrate()
        await store.migrate()
        expect(await store.get('from-0.1.0')).toEqual(makeRecord({ id: 'from-0.1.0', policy: null, hasCredits: false }))

        const updated = makeRecord({ id: 'from-0.1.0', policy: 'pro', hasCredits: true, version: 2, updatedAt: T0 + 1 })
        expect(await store.update(updated, 1)).toBe('updated')
        expect(await store.get('from-0.1.0')).toEqual(updated)
        // And back: both columns are mutable.
        expect(await store.update({ ...updated, policy: null, hasCredits: false, version: 3 }, 2)).toBe('updated')
        expect(await store.get('from-0.1.0')).toMatchObject({ policy: null, hasCredits: false, version: 3 })

        // A 0.1.0 instance still running during a rolling deploy inserts without the new columns.
        await insertAsLegacy(table, 'still-0.1.0')
        expect(await store.get('still-0.1.0')).toMatchObject({ policy: null, hasCredits: false })
        // The usage table was created by the same migration.
        expect((await store.consumeUsage(request({ rate: [window('rate:upgraded', 1)] }))).refused).toBeNull()
        await store.migrate()
        expect(await store.list({ now: T0, order: 'asc', limit: 10 })).toHaveLength(2)
      }, false)
    })

    it('keeps a policy of 64 characters and every has_credits value of a fresh table', async () => {
      await withTable(async (table) => {
        const store = backend.store(table)
        const policy = 'p'.repeat(60) + 'ü-✓3'
        expect(await store.insert(makeRecord({ id: 'a', policy, hasCredits: true }), null)).toBe('inserted')
        expect(await store.insert(makeRecord({ id: 'b', policy: undefined, hasCredits: undefined }), null)).toBe('inserted')
        expect(await store.get('a')).toMatchObject({ policy, hasCredits: true })
        // Absent in the record (written by an older caller) is stored as the defaults.
        expect(await store.get('b')).toMatchObject({ policy: null, hasCredits: false })
      })
    })

    it('two stores on separate clients: 200 concurrent consumptions against a limit of 50 pass exactly 50, 100 of cost 3 against 100 credits pass 33', async () => {
      await withTable(async (table) => {
        const stores = [backend.store(table), backend.otherStore(table)]
        for (const counter of [window('rate:shared:fw', 50), bucket('rate:shared:tb', 50)]) {
          const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => stores[i % 2]!.consumeUsage(request({ rate: [counter] }))))
          expect(countOf(outcomes.map((outcome) => outcome.refused), null), counter.algorithm).toBe(50)
          expect((await stores[1]!.consumeUsage(request({ rate: [counter], cost: 0 }))).rate[0]!.value).toBe(counter.algorithm === 'fixed-window' ? 50 : 0)
        }
        const credits = pool('credits:shared', 100)
        const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => stores[i % 2]!.consumeUsage(request({ credits, cost: 3 }))))
        expect(countOf(outcomes.map((outcome) => outcome.refused), null)).toBe(33)
        expect((await stores[0]!.consumeUsage(request({ credits, cost: 0 }))).credits).toEqual({ previous: 1, remaining: 1 })
      })
    }, 30_000)

    it('two stores on separate clients: concurrent top-ups land, and consumptions naming two counters in opposite orders neither deadlock nor lose a count', async () => {
      await withTable(async (table) => {
        const stores = [backend.store(table), backend.otherStore(table)]
        const first = window('rate:order:a', 40)
        const second = window('rate:order:b', 40)
        const outcomes = await Promise.all(
          Array.from({ length: 100 }, (_, i) => stores[i % 2]!.consumeUsage(request({ rate: i % 4 < 2 ? [first, second] : [second, first] }))),
        )
        expect(countOf(outcomes.map((outcome) => outcome.refused), null)).toBe(40)
        expect((await stores[0]!.consumeUsage(request({ rate: [first, second], cost: 0 }))).rate.map((state) => state.value)).toEqual([40, 40])

        const credits = pool('credits:topped', 0)
        await Promise.all(Array.from({ length: 40 }, (_, i) => stores[i % 2]!.adjustCredits({ pool: credits, now: T0, mode: 'add', amount: 5 })))
        expect((await stores[1]!.consumeUsage(request({ credits, cost: 0 }))).credits).toEqual({ previous: 200, remaining: 200 })
      })
    }, 30_000)

    it('creates many absent rows at once: the lost races to insert them are run again, never surfaced', async () => {
      await withTable(async (table) => {
        const stores = [backend.store(table), backend.otherStore(table)]
        // 8 fresh counters and 4 fresh balances, each first met by several transactions at once.
        const outcomes = await Promise.all(
          Array.from({ length: 96 }, (_, i) =>
            stores[i % 2]!.consumeUsage(request({ rate: [window(`rate:fresh:${i % 8}`, 1000)], credits: pool(`credits:fresh:${i % 4}`, 1000) })),
          ),
        )
        expect(countOf(outcomes.map((outcome) => outcome.refused), null)).toBe(96)
        for (let i = 0; i < 8; i++) expect((await stores[0]!.consumeUsage(request({ rate: [window(`rate:fresh:${i}`, 1000)], cost: 0 }))).rate[0]!.value).toBe(12)
        for (let i = 0; i < 4; i++) expect((await stores[0]!.consumeUsage(request({ credits: pool(`credits:fresh:${i}`, 1000), cost: 0 }))).credits!.remaining).toBe(976)
        expect(await usageRows(table)).toEqual({ rate: 8, credits: 4 })
      })
    }, 30_000)

    it('writes no row for a dry run, nor for a consumption refused by a counter', async () => {
      await withTable(async (table) => {
        const store = backend.store(table)
        const counters = [window('rate:dry:fw', 5), bucket('rate:dry:tb', 5)]
        const credits = pool('credits:dry', 10)
        expect(await store.consumeUsage(request({ rate: counters, credits, cost: 2, commit: false }))).toMatchObject({ refused: null, credits: { previous: 10, remaining: 8 } })
        expect(await store.consumeUsage(request({ rate: counters, credits, cost: 6, commit: false }))).toMatchObject({ refused: 'rate_limited' })
        expect(await usageRows(table)).toEqual({ rate: 0, credits: 0 })
        // Committed, but more than a fresh counter holds: refused, so nothing to write either.
        expect(await store.consumeUsage(request({ rate: counters, credits, cost: 6 }))).toMatchObject({ refused: 'rate_limited' })
        expect(await usageRows(table)).toEqual({ rate: 0, credits: 0 })
        // A usage-exceeded request moves its counters only.
        expect(await store.consumeUsage(request({ rate: counters, credits: pool('credits:dry:poor', 1), cost: 2 }))).toMatchObject({ refused: 'usage_exceeded' })
        expect(await usageRows(table)).toEqual({ rate: 2, credits: 0 })
        expect((await store.consumeUsage(request({ rate: counters, credits, cost: 1 }))).refused).toBeNull()
        expect(await usageRows(table)).toEqual({ rate: 2, credits: 1 })
      })
    })

    it('purges the counter rows that expired by then, returns their number, and keeps every balance', async () => {
      await withTable(async (table) => {
        const store = backend.store(table)
        // A fixed window's state expires at its window's end; a token bucket's when it is full again.
        await store.consumeUsage(request({ rate: [window('rate:purge:day', 5)], credits: pool('credits:purge:a', 5) }))
        await store.consumeUsage(request({ rate: [bucket('rate:purge:tb', 10, 1000)], cost: 5 })) // full again at T0 + 500
        await store.consumeUsage(request({ rate: [window('rate:purge:day2', 5)], credits: pool('credits:purge:b', 5, { amount: 5, periodStart: T0 }) }))
        await store.adjustCredits({ pool: pool('credits:purge:c', 0), now: T0, mode: 'set', amount: 7 })
        expect(await usageRows(table)).toEqual({ rate: 3, credits: 3 })

        expect(await store.purgeUsage(T0 + 499)).toBe(0)
        expect(await store.purgeUsage(T0 + 500)).toBe(1)
        expect(await store.purgeUsage(T0 + 500)).toBe(0)
        expect(await store.purgeUsage(WINDOW_START + DAY)).toBe(2)
        expect(await usageRows(table)).toEqual({ rate: 0, credits: 3 })
        expect(await store.purgeUsage(Number.MAX_SAFE_INTEGER)).toBe(0)
        expect((await store.consumeUsage(request({ credits: pool('credits:purge:c', 0), cost: 0 }))).credits).toEqual({ previous: 7, remaining: 7 })
      })
    })

    it('returns the same outcomes as the MemoryStore over a long mixed sequence (fractions, refills, adjustments, purges)', async () => {
      await withTable(async (table) => {
        const store = backend.store(table)
        const reference = new MemoryStore()
        for (const step of mixedSequence(7)) {
          if (step.kind === 'consume') expect(await store.consumeUsage(step.request), JSON.stringify(step.request)).toEqual(await reference.consumeUsage(step.request))
          else if (step.kind === 'adjust') expect(await store.adjustCredits(step.change)).toEqual(await reference.adjustCredits(step.change))
          else expect(await store.purgeUsage(step.now)).toBe(await reference.purgeUsage(step.now))
        }
      })
    }, 30_000)

    it('wraps usage failures in StoreError naming the operation only', async () => {
      const store = backend.store(`kwu_missing_${uniqueSuffix()}`)
      const id = 'rate:secret-counter-id'
      await expectStoreError(store.consumeUsage(request({ rate: [window(id, 1)], credits: pool('credits:secret-pool', 1) })), 'consumeUsage', [id, 'secret-pool'])
      await expectStoreError(store.consumeUsage(request({ rate: [window(id, 1)], commit: false })), 'consumeUsage', [id])
      await expectStoreError(store.adjustCredits({ pool: pool('credits:secret-pool', 1), now: T0, mode: 'add', amount: 1 }), 'adjustCredits', ['secret-pool'])
      await expectStoreError(store.purgeUsage(T0), 'purgeUsage', [String(T0)])
      // No row to read at all: decided without the database.
      expect(await store.consumeUsage(request({}))).toEqual({ refused: null, rate: [], credits: null })
    })

    it('two stores on separate clients: 240 concurrent guarded requests over 4 keys sharing a bucket and a balance pass exactly the bucket, in either counter order; wrong secrets charge nothing', async () => {
      await withTable(async (table) => {
        const stores = [backend.store(table), backend.otherStore(table)]
        const hash = (id: string) => `kw1$sha256$-$${id.repeat(64 / id.length)}`
        const ids = ['a1', 'b2', 'c3', 'd4']
        for (const id of ids) await stores[0]!.insert(makeRecord({ id, hash: hash(id) }), null)
        const shared = bucket('rate:race:shared', 60)
        const credits = pool('credits:race:shared', 100)
        // Every row is absent at first: the first requests race to insert them.
        const answers = await Promise.all(
          Array.from({ length: 240 }, (_, i) => {
            const id = ids[i % 4]!
            const own = window(`rate:race:${id}`, 30)
            const wrong = i % 12 === 11
            return stores[i % 2]!.consumeIfCurrent({ ...request({ rate: i % 3 === 0 ? [shared, own] : [own, shared], credits }), keyId: id, version: 1, hash: wrong ? hash('ff') : hash(id) })
          }),
        )
        expect(countOf(answers.map((answer) => answer.applied), false)).toBe(20)
        expect(countOf(answers.map((answer) => answer.applied && answer.outcome.refused === null), true)).toBe(60)
        const after = await stores[1]!.consumeUsage(request({ rate: [shared, ...ids.map((id) => window(`rate:race:${id}`, 30))], credits, cost: 0 }))
        expect(after.rate[0]!.value).toBe(0)
        expect(after.rate.slice(1).reduce((sum, state) => sum + state.value, 0)).toBe(60)
        expect(after.credits).toEqual({ previous: 40, remaining: 40 })
      })
    }, 60_000)

    it.skipIf(backend.name === 'SQLite')('lets an update of a key through while guarded verifies of it keep coming (the key row lock queues fairly)', async () => {
      const table = `kwu_${uniqueSuffix()}`
      const stores = [backend.store(table), backend.otherStore(table)]
      const hash = `kw1$sha256$-$${'ef'.repeat(32)}`
      try {
        await stores[0]!.migrate()
        let record = makeRecord({ id: 'busy', hash })
        await stores[0]!.insert(record, null)
        let stop = false
        let calls = 0
        // 12 workers, each verifying the key again as soon as its last verify returned.
        const workers = Array.from({ length: 12 }, async (_, i) => {
          while (!stop) {
            await stores[i % 2]!.consumeIfCurrent({ ...request({ now: T0 + calls++, rate: [bucket('rate:busy', 1_000_000_000)] }), keyId: 'busy', version: record.version, hash })
          }
        })
        try {
          while (calls < 50) await new Promise((resolve) => setTimeout(resolve, 5))
          for (const change of [{ enabled: false }, { enabled: true }, { revokedAt: T0 }]) {
            const next = { ...record, ...change, version: record.version + 1 }
            const started = performance.now()
            expect(await stores[0]!.update(next, record.version)).toBe('updated')
            // Queued behind the verifies holding the lock now (a few ms each), not behind every later one:
            // under FOR SHARE this took seconds.
            expect(performance.now() - started).toBeLessThan(3_000)
            record = next
          }
        } finally {
          stop = true
          await Promise.all(workers)
        }
        expect(await stores[1]!.consumeIfCurrent({ ...request({ rate: [bucket('rate:busy', 10)] }), keyId: 'busy', version: record.version, hash })).toEqual({ applied: false, record })
      } finally {
        await backend.drop(table)
      }
    }, 30_000)

    it('keeps counter and balance IDs exact through a guarded consumption: quotes, backslashes, braces, commas, NULL, spaces and characters beyond the BMP', async () => {
      await withTable(async (table) => {
        const store = backend.store(table)
        const hash = `kw1$sha256$-$${'ab'.repeat(32)}`
        await store.insert(makeRecord({ id: 'odd', hash }), null)
        const ids = ['rate:"quoted"', 'rate:back\\slash\\', 'rate:{braces},comma', 'NULL', 'rate: spaced ', 'rate:🔑✓日本']
        const counters = ids.map((id, index) => (index % 2 === 0 ? window(id, 5) : bucket(id, 5)))
        const credits = pool('credits:"odd" {1,2} \\ 🔑', 10)
        for (let i = 0; i < 3; i++) {
          const answer = await store.consumeIfCurrent({ ...request({ rate: counters, credits }), keyId: 'odd', version: 1, hash })
          expect(answer).toMatchObject({ applied: true, outcome: { refused: null, credits: { remaining: 9 - i } } })
        }
        const stored = await backend.query(`SELECT kind, id, value FROM ${backend.quote(`${table}_usage`)}`)
        const text = (value: unknown) => (Buffer.isBuffer(value) ? value.toString('utf8') : value)
        expect(stored.map((row) => [text(row['kind']), text(row['id']), Number(row['value'])]).sort()).toEqual(
          [...ids.map((id, index) => ['rate', id, index % 2 === 0 ? 3 : 2]), ['credits', credits.id, 7]].sort(),
        )
      })
    })

    it('consumeIfCurrent and consumeUsage give the same answers as MemoryStore at every step of a seeded random sequence, guard failures included', async () => {
      await withTable(async (table) => {
        const store = backend.store(table)
        const memory = new MemoryStore()
        const { next, int, pick, hex } = seededRandom(20_261_203)
        const newHash = () => `kw1$sha256$-$${hex(64)}`

        // Fractional refills (7 per 3001 ms into 10), windows that do not divide the epoch, a balance
        // that refills every 7919 ms; a counter may be named twice in one request.
        const counters: RateCounter[] = [
          { id: 'rate:d:tb', algorithm: 'token-bucket', limit: 7, capacity: 10, windowMs: 3001 },
          { id: 'rate:d:tb-slow', algorithm: 'token-bucket', limit: 3, capacity: 5, windowMs: 7_000 },
          { id: 'rate:d:fw', algorithm: 'fixed-window', limit: 5, capacity: 5, windowMs: 3001 },
          { id: 'rate:d:fw-minute', algorithm: 'fixed-window', limit: 11, capacity: 11, windowMs: 60_000 },
        ]
        const pools = (now: number): CreditPool[] => [
          { id: 'credits:d:plain', initial: 40, refill: null },
          { id: 'credits:d:refilling', initial: 12, refill: { amount: 9, periodStart: now - (now % 7_919) } },
        ]

        let now = T0 + 123
        const ids = ['d0', 'd1', 'd2', 'd3', 'd4']
        const records = new Map<string, MutableStoredKey>()
        const put = async (record: MutableStoredKey) => {
          expect(await store.insert(record, null)).toBe(await memory.insert(record, null))
          records.set(record.id, record)
        }
        for (const id of ids) await put(makeRecord({ id, hash: newHash(), lastUsedAt: id === 'd0' ? null : T0 - int(1, 1000) }))

        /** A change of one record, applied to both stores as the KeyManager would (version + 1). */
        const mutate = async () => {
          const record = records.get(pick(ids))!
          const changed: MutableStoredKey = { ...record, version: record.version + 1, updatedAt: now }
          const kind = pick(['rotate', 'rotate', 'rotate', 'toggle', 'revoke', 'expire', 'restore', 'replace', 'touch'] as const)
          if (kind === 'restore') Object.assign(changed, { enabled: true, revokedAt: null, expiresAt: null })
          else if (kind === 'rotate') {
            changed.previousHash = record.hash
            changed.previousHashExpiresAt = next() < 0.2 ? null : now + int(-500, 30_000)
            changed.hash = newHash()
          } else if (kind === 'toggle') changed.enabled = !record.enabled
          else if (kind === 'revoke') changed.revokedAt = next() < 0.5 ? null : now
          else if (kind === 'expire') changed.expiresAt = next() < 0.3 ? null : now + int(-200, 4_000)
          if (kind === 'touch') {
            const at = now + int(-100, 100)
            await store.touch(record.id, at)
            await memory.touch(record.id, at)
            records.set(record.id, { ...record, lastUsedAt: (await memory.get(record.id))!.lastUsedAt })
          } else if (kind === 'replace') {
            // Deleted and created again with the same ID and version, another secret: the version
            // alone must not make the guard hold.
            expect(await store.delete(record.id)).toBe(await memory.delete(record.id))
            await put({ ...record, hash: newHash(), previousHash: null, previousHashExpiresAt: null })
          } else {
            expect(await store.update(changed, record.version)).toBe(await memory.update(changed, record.version))
            records.set(record.id, changed)
          }
          return kind
        }

        const seen: Record<string, number> = {}
        const count = (what: string) => void (seen[what] = (seen[what] ?? 0) + 1)
        for (let step = 0; step < 900; step++) {
          const jump = next()
          if (jump < 0.2) now += 0
          else if (jump < 0.3) now -= int(1, 700)
          else if (jump < 0.8) now += int(1, 400)
          else now += int(401, 5_000)

          const roll = next()
          if (roll < 0.1) {
            count(`mutate:${await mutate()}`)
            continue
          }
          const rate = Array.from({ length: int(0, 3) }, () => pick(counters))
          const usage: UsageRequest = { now, cost: int(0, 4), commit: next() < 0.85, rate, credits: next() < 0.6 ? pick(pools(now)) : null }
          if (roll < 0.2) {
            // An unguarded consumption between the guarded ones (on PostgreSQL the same function).
            expect(await store.consumeUsage(usage), `step ${step}: ${JSON.stringify(usage)}`).toEqual(await memory.consumeUsage(usage))
            count('consumeUsage')
            continue
          }
          if (roll < 0.23) {
            const change: CreditAdjustment = { pool: pick(pools(now)), now, mode: next() < 0.3 ? 'set' : 'add', amount: int(-10, 20) }
            expect(await store.adjustCredits(change)).toEqual(await memory.adjustCredits(change))
            continue
          }
          if (roll < 0.25) {
            expect(await store.purgeUsage(now)).toBe(await memory.purgeUsage(now))
            continue
          }
          const keyId = next() < 0.05 ? 'ghost' : pick(ids)
          const record = records.get(keyId)
          const current = record?.hash ?? newHash()
          const secret = next()
          const hash =
            secret < 0.6
              ? current
              : secret < 0.75 && record?.previousHash
                ? record.previousHash
                : pick([newHash(), current.slice(0, -1), `${current}0`, `${current}\u0000`, `${current.slice(0, -1)}${current.endsWith('0') ? '1' : '0'}`, ''])
          const version = (record?.version ?? 1) + (next() < 0.85 ? 0 : pick([-1, 1]))
          const guarded: GuardedUsageRequest = { ...usage, keyId, version, hash }

          const expected = await referenceConsumeIfCurrent(memory, guarded)
          const actual = await store.consumeIfCurrent(guarded)
          expect(actual, `step ${step}: ${JSON.stringify(guarded)}`).toEqual(expected)
          if (expected.applied) {
            // The outcome to the bit: toEqual compares numbers with Object.is, and JSON prints each
            // double as the shortest text that reads back as it.
            expect(JSON.stringify(actual)).toBe(JSON.stringify(expected))
            count(hash === record!.hash ? 'applied' : 'applied:previous hash')
            count(`applied:${expected.outcome.refused ?? 'passed'}${usage.commit ? '' : ':dry run'}`)
          } else if (expected.record === null) count('refused:no record')
          else {
            const stored = expected.record
            if (stored.version !== version) count('refused:version')
            else if (stored.revokedAt !== null) count('refused:revoked')
            else if (!stored.enabled) count('refused:disabled')
            else if (stored.expiresAt !== null && now >= stored.expiresAt) count('refused:expired')
            else if (hash === stored.previousHash) count('refused:previous hash past its grace')
            else count('refused:hash')
          }
        }
        // The run reached every branch worth comparing.
        const branches = ['applied', 'applied:previous hash', 'applied:passed', 'applied:rate_limited', 'applied:usage_exceeded', 'applied:passed:dry run', 'consumeUsage']
        const refusals = ['refused:no record', 'refused:version', 'refused:revoked', 'refused:disabled', 'refused:expired', 'refused:previous hash past its grace', 'refused:hash']
        for (const what of [...branches, ...refusals, 'mutate:replace', 'mutate:touch', 'mutate:rotate']) {
          expect(seen[what] ?? 0, `${what} in ${JSON.stringify(seen)}`).toBeGreaterThan(2)
        }
      })
    }, 120_000)

    it(`a guarded consumption runs ${backend.guardedStatements('t').length === 1 ? 'one statement' : 'one transaction'}; a failed guard and a dry run write nothing`, async () => {
      await withTable(async (table) => {
        const { store, sent } = backend.counting(table)
        const hash = `kw1$sha256$-$${'ab'.repeat(32)}`
        await store.insert(makeRecord({ id: 'counted', hash, lastUsedAt: T0 - 1 }), null)
        const counted = (overrides: Partial<GuardedUsageRequest> = {}): GuardedUsageRequest => ({
          ...request({ rate: [bucket('rate:counted:burst', 100), window('rate:counted:daily', 1000)], credits: pool('credits:counted', 1000) }),
          keyId: 'counted',
          version: 1,
          hash,
          ...overrides,
        })
        // The first one creates the rows (MySQL inserts absent rows from a second transaction).
        expect(await store.consumeIfCurrent(counted())).toMatchObject({ applied: true, outcome: { refused: null, credits: { remaining: 999 } }, lastUsedAt: T0 - 1 })
        sent.length = 0
        for (let i = 0; i < 5; i++) expect((await store.consumeIfCurrent(counted({ now: T0 + i }))).applied).toBe(true)
        expect(sent).toEqual(Array.from({ length: 5 }, () => backend.guardedStatements(table)).flat())

        const rows = await backend.query(`SELECT kind, id, value FROM ${backend.quote(`${table}_usage`)} ORDER BY kind, id`)
        const record = await store.get('counted')
        sent.length = 0
        expect(await store.consumeIfCurrent(counted({ version: 2 }))).toEqual({ applied: false, record })
        const dry = await store.consumeIfCurrent(counted({ commit: false }))
        expect(dry).toMatchObject({ applied: true, outcome: { refused: null, credits: { previous: 994, remaining: 993 } } })
        expect(await backend.query(`SELECT kind, id, value FROM ${backend.quote(`${table}_usage`)} ORDER BY kind, id`)).toEqual(rows)
        // One statement each on PostgreSQL; elsewhere the failed guard ends its transaction after the key
        // read, and the dry run is two plain reads.
        if (backend.name === 'PostgreSQL') expect(sent).toEqual(['SELECT applied,', 'SELECT applied,'])
        else expect(sent.filter((name) => !['START TRANSACTION', 'BEGIN IMMEDIATE', 'COMMIT'].includes(name))).toEqual(['SELECT id, LOCK IN SHARE MODE', 'SELECT id,', 'SELECT kind,'].map((name) => (backend.name === 'SQLite' ? name.replace(' LOCK IN SHARE MODE', '') : name)))
      })
    })

    it('through KeyManager: after the first verify of a limited key, each verify is one guarded consumption and nothing else', async () => {
      await withTable(async (table) => {
        const { store, sent } = backend.counting(table)
        const policies: LimitsOptions['policies'] = { metered: { rate: [{ name: 'hour', limit: 200, window: '1h', algorithm: 'fixed-window' }, { name: 'burst', limit: 50, window: '1s' }], credits: { initial: 100 } } }
        const managers: KeyManager[] = []
        try {
          const { keys } = setup({ store, limits: { policies } })
          managers.push(keys)
          const { token } = await keys.create({ name: 'CI', environment: 'live', policy: 'metered' })
          expect(await keys.verify(token)).toMatchObject({ valid: true, credits: { remaining: 99 } })
          sent.length = 0
          const N = 10
          for (let i = 0; i < N; i++) expect(await keys.verify(token)).toMatchObject({ valid: true, credits: { remaining: 98 - i } })
          expect(sent).toEqual(Array.from({ length: N }, () => backend.guardedStatements(table)).flat())
        } finally {
          for (const keys of managers) await keys.close()
        }
      })
    })
  })
}

const postgres = backends[0]!

describe.skipIf(!postgres.available)('PostgreSQL: the consume function', () => {
  const functionCount = async (table: string) => Number((await postgres.query('SELECT count(*) AS n FROM pg_proc WHERE proname = $1', [`${table}_consume`]))[0]!['n'])

  it('is created by migrate() on a table upgraded from 0.1.0, once however often migrate() or the shipped file runs, and a stale one is replaced', async () => {
    const table = `kwu_${uniqueSuffix()}`
    const store = postgres.store(table)
    const hash = `kw1$sha256$-$${'cd'.repeat(32)}`
    try {
      for (const statement of postgres.legacySchema(table)) await postgres.query(statement)
      const values = insertParams(makeRecord({ id: 'from-0.1.0', hash }), postgres.boolean).slice(0, LEGACY_COLUMNS.length)
      await postgres.query(`INSERT INTO "${table}" (${LEGACY_COLUMNS.join(', ')}) VALUES (${values.map((_, index) => `$${index + 1}`).join(', ')})`, values)
      expect(await functionCount(table)).toBe(0)

      await store.migrate()
      await store.migrate()
      expect(await functionCount(table)).toBe(1)
      const guarded = (now: number): GuardedUsageRequest => ({ ...request({ now, rate: [window('rate:upgraded', 5)], credits: pool('credits:upgraded', 3) }), keyId: 'from-0.1.0', version: 1, hash })
      expect(await store.consumeIfCurrent(guarded(T0))).toMatchObject({ applied: true, outcome: { refused: null, credits: { remaining: 2 } }, lastUsedAt: null })

      // A body that is not this version's (an older build's, say): CREATE OR REPLACE puts this one back.
      const migration = postgresDialect(table).migration.map((statement) => statement.sql)
      const definition = migration.find((sql) => sql.startsWith('CREATE OR REPLACE FUNCTION'))!
      await postgres.query(definition.replace(/\$\$[\s\S]*\$\$/, () => "$$ BEGIN RAISE EXCEPTION 'stale'; END $$"))
      await expectStoreError(store.consumeIfCurrent(guarded(T0)), 'consumeIfCurrent')
      for (const statement of migrationFileStatements('postgres')) await postgres.query(statement.replaceAll('keywarden_keys', table))
      expect(await functionCount(table)).toBe(1)
      expect(await store.consumeIfCurrent(guarded(T0 + 1))).toMatchObject({ applied: true, outcome: { credits: { remaining: 1 } } })
      expect(await store.get('from-0.1.0')).toEqual(makeRecord({ id: 'from-0.1.0', hash, policy: null, hasCredits: false }))

      // Nothing depends on the tables: they drop without CASCADE, the function stays until dropped.
      await postgres.query(`DROP TABLE "${table}", "${table}_usage", "${table}_audit"`)
      expect(await functionCount(table)).toBe(1)
    } finally {
      await postgres.drop(table)
    }
    expect(await functionCount(table)).toBe(0)
  })

  it('answers a failed guard with the key row as get() maps it, a rich record included, and reads a hash PostgreSQL cannot hold as no match', async () => {
    const table = `kwu_${uniqueSuffix()}`
    const store = postgres.store(table)
    try {
      await store.migrate()
      const rich = makeRichRecord({ enabled: true, revokedAt: null })
      await store.insert(rich, null)
      const answer = await store.consumeIfCurrent({ ...request({ rate: [window('rate:rich', 5)] }), keyId: rich.id, version: rich.version + 1, hash: rich.hash })
      expect(answer).toEqual({ applied: false, record: await store.get(rich.id) })
      expect(answer).toEqual({ applied: false, record: rich })
      expect(await store.consumeIfCurrent({ ...request({ rate: [window('rate:rich', 5)] }), keyId: rich.id, version: rich.version, hash: `${rich.hash}\u0000` })).toEqual({ applied: false, record: rich })
      expect((await store.consumeIfCurrent({ ...request({ rate: [window('rate:rich', 5)] }), keyId: rich.id, version: rich.version, hash: rich.hash })).applied).toBe(true)
    } finally {
      await postgres.drop(table)
    }
  })
})

describe('SQLite: usage across processes sharing the database file', () => {
  it('4 processes × 60 consumptions against a window of 100 and 90 credits: exactly 90 pass and 10 exceed the credits', async () => {
    const table = `kwu_${uniqueSuffix()}`
    const store = sqlite.store(table)
    await store.migrate()
    try {
      const racer = fileURLToPath(new URL('./sqlite-racer.ts', import.meta.url))
      const processes = Array.from({ length: 4 }, (_, i) =>
        spawn(process.execPath, ['--import', 'tsx', racer, sqlite.file, table, `proc${i}`, '60', 'usage'], { stdio: ['pipe', 'pipe', 'inherit'] }),
      )
      const lines = processes.map((child) => {
        const output: string[] = []
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk))
        return {
          ready: new Promise<void>((resolve) => child.stdout.once('data', () => resolve())),
          done: new Promise<string>((resolve, reject) => {
            child.on('error', reject)
            child.on('close', (code) => (code === 0 ? resolve(output.join('')) : reject(new Error(`racer exited with ${code}`))))
          }),
        }
      })
      await Promise.all(lines.map((line) => line.ready))
      for (const child of processes) child.stdin.write('go\n')
      const refused = (await Promise.all(lines.map((line) => line.done))).flatMap((output) => JSON.parse(output.split('\n').at(-2)!) as (string | null)[])
      expect(refused).toHaveLength(240)
      expect(countOf(refused, null)).toBe(90)
      expect(countOf(refused, 'usage_exceeded')).toBe(10)
      expect(countOf(refused, 'rate_limited')).toBe(140)
      const final = await store.consumeUsage(request({ rate: [window('rate:race:daily', 100)], credits: pool('credits:race', 90), cost: 0 }))
      expect(final).toMatchObject({ rate: [{ value: 100 }], credits: { remaining: 0 } })
    } finally {
      await sqlite.drop(table)
    }
  }, 60_000)
})

describe('statements per consumption (no server needed)', () => {
  const counter = window('rate:seq', 10)
  const stored = { kind: 'rate', id: 'rate:seq', value: 3, at: WINDOW_START }

  /**
   * A pg pool stand-in: the usage read answers `rows`, the consume function `consumed` (then, after a
   * `failures` list of errors, one each); records every statement by its first words and its parameters.
   */
  function fakePg(rows: Record<string, unknown>[], consumed: Record<string, unknown> = {}, failures: Error[] = []) {
    const sent: string[] = []
    const params: unknown[][] = []
    const query = async (text: string, values: unknown[] = []) => {
      sent.push(text.split(' ').slice(0, 2).join(' '))
      params.push(values)
      if (text.includes('_consume"(')) {
        const failure = failures.shift()
        if (failure !== undefined) throw failure
        return { rows: [consumed], rowCount: 1 }
      }
      return { rows: text.startsWith('SELECT kind') ? rows : [], rowCount: 1 }
    }
    const pool = { query, totalCount: 0, connect: async () => ({ query, release: () => undefined }) }
    return { store: new PostgresStore({ pool }), sent, params }
  }

  /** A mysql2 pool stand-in: the usage read answers `reads.shift()` (then no row). */
  function fakeMySql(reads: Record<string, unknown>[][]) {
    const sent: string[] = []
    const execute = async (sql: string): Promise<[unknown, unknown]> => {
      sent.push(sql.includes('FOR UPDATE') ? 'SELECT … FOR UPDATE' : sql.includes('LOCK IN SHARE MODE') ? 'SELECT … LOCK IN SHARE MODE' : sql.split(' ').slice(0, 2).join(' '))
      return [sql.startsWith('SELECT') ? (reads.shift() ?? []) : { affectedRows: 1 }, undefined]
    }
    const connection = {
      execute,
      beginTransaction: async () => void sent.push('START TRANSACTION'),
      commit: async () => void sent.push('COMMIT'),
      rollback: async () => void sent.push('ROLLBACK'),
      release: () => undefined,
      destroy: () => undefined,
    }
    return { store: new MySqlStore({ pool: { execute, getConnection: async () => connection } }), sent }
  }

  it('PostgreSQL: a committed consumption is one statement, the consume function, run again after a lost insert race or a deadlock; a dry run is one read', async () => {
    const answer = { applied: true, key_row: null, refused: null, rate_value: [4], rate_at: [String(WINDOW_START)], credits_previous: 9, credits_remaining: 8, key_last_used_at: null }
    const one = fakePg([], answer)
    expect(await one.store.consumeUsage(request({ rate: [counter], credits: pool('credits:seq', 100) }))).toEqual({
      refused: null,
      rate: [{ value: 4, at: WINDOW_START }],
      credits: { previous: 9, remaining: 8 },
    })
    expect(one.sent).toEqual(['SELECT applied,'])
    // Unguarded: no key, no version, no hash; every counter's fields as arrays, the pool's as scalars.
    expect(one.params[0]).toEqual([null, null, null, T0, 1, true, '{"rate:seq"}', '{t}', '{10}', '{10}', `{${DAY}}`, 'credits:seq', 100, null, null])

    const raced = fakePg([], answer, [Object.assign(new Error('duplicate key'), { code: '23505' }), Object.assign(new Error('deadlock'), { code: '40P01' })])
    expect((await raced.store.consumeUsage(request({ rate: [counter] }))).refused).toBeNull()
    expect(raced.sent).toEqual(['SELECT applied,', 'SELECT applied,', 'SELECT applied,'])

    // Guarded: the key's ID, version and hash; quotes and backslashes in IDs survive the array literal.
    const guarded = fakePg([], { ...answer, key_last_used_at: String(T0 - 9) })
    const odd = window('rate:"quoted" \\ {braces}, NULL', 10)
    const outcome = await guarded.store.consumeIfCurrent({ ...request({ rate: [odd], credits: pool('credits:seq', 100, { amount: 5, periodStart: T0 - 1 }) }), keyId: 'k', version: 7, hash: 'h' })
    expect(outcome).toMatchObject({ applied: true, lastUsedAt: T0 - 9 })
    expect(guarded.params[0]!.slice(0, 3)).toEqual(['k', 7, 'h'])
    expect(guarded.params[0]![6]).toBe('{"rate:\\"quoted\\" \\\\ {braces}, NULL"}')
    expect(guarded.params[0]!.slice(12)).toEqual([100, 5, T0 - 1])
    // A failed guard answers the row as JSON; no row, no record.
    const record = makeRecord({ id: 'k' })
    const keyRow = Object.fromEntries(COLUMNS.map((column, index) => [column, insertParams(record, (value) => value)[index]]))
    expect(await fakePg([], { applied: false, key_row: keyRow }).store.consumeIfCurrent({ ...request({}), keyId: 'k', version: 2, hash: 'h' })).toEqual({ applied: false, record })
    expect(await fakePg([], { applied: false, key_row: null }).store.consumeIfCurrent({ ...request({}), keyId: 'k', version: 2, hash: 'h' })).toEqual({ applied: false, record: null })

    const dry = fakePg([stored])
    await dry.store.consumeUsage(request({ rate: [counter], commit: false }))
    expect(dry.sent).toEqual(['SELECT kind,'])
  })

  it('MySQL: START TRANSACTION, one locking read, one UPDATE for all rows, COMMIT; rows found absent are inserted by a second transaction', async () => {
    const existing = fakeMySql([[stored]])
    await existing.store.consumeUsage(request({ rate: [counter] }))
    expect(existing.sent).toEqual(['START TRANSACTION', 'SELECT … FOR UPDATE', 'UPDATE `keywarden_keys_usage`', 'COMMIT'])

    const three = fakeMySql([[stored, { ...stored, id: 'rate:seq:2' }, { kind: 'credits', id: 'credits:seq', value: 9, at: null }]])
    await three.store.consumeUsage(request({ rate: [counter, window('rate:seq:2', 10)], credits: pool('credits:seq', 100) }))
    expect(three.sent).toEqual(['START TRANSACTION', 'SELECT … FOR UPDATE', 'UPDATE `keywarden_keys_usage`', 'COMMIT'])

    // Guarded: the key row first, in share mode.
    const guarded = fakeMySql([[], [stored]])
    expect(await guarded.store.consumeIfCurrent({ ...request({ rate: [counter] }), keyId: 'k', version: 1, hash: 'h' })).toEqual({ applied: false, record: null })
    expect(guarded.sent).toEqual(['START TRANSACTION', 'SELECT … LOCK IN SHARE MODE', 'COMMIT'])

    // The credits row is absent: the first transaction (holding its gap lock) rolls back; the second
    // lock-reads the counter only, checks the balance without a lock, and inserts it.
    const absent = fakeMySql([[stored], [stored], []])
    expect(await absent.store.consumeUsage(request({ rate: [counter], credits: pool('credits:seq', 100) }))).toMatchObject({ refused: null, credits: { previous: 100, remaining: 99 } })
    expect(absent.sent).toEqual([
      'START TRANSACTION', 'SELECT … FOR UPDATE', 'ROLLBACK',
      'START TRANSACTION', 'SELECT … FOR UPDATE', 'SELECT kind,', 'UPDATE `keywarden_keys_usage`', 'INSERT INTO', 'COMMIT',
    ])

    // Absent, but nothing to write (refused by a counter): one transaction, no insert.
    const refused = fakeMySql([[{ ...stored, value: 10 }]])
    expect((await refused.store.consumeUsage(request({ rate: [counter], credits: pool('credits:seq', 100) }))).refused).toBe('rate_limited')
    expect(refused.sent).toEqual(['START TRANSACTION', 'SELECT … FOR UPDATE', 'COMMIT'])

    // Present by the time of the second transaction: it starts over, and then finds the row.
    const raced = fakeMySql([[], [{ kind: 'credits', id: 'credits:seq', value: 50, at: null }], [{ kind: 'credits', id: 'credits:seq', value: 50, at: null }]])
    expect(await raced.store.adjustCredits({ pool: pool('credits:seq', 0), now: T0, mode: 'add', amount: 5 })).toEqual({ previous: 50, remaining: 55 })
    expect(raced.sent).toEqual([
      'START TRANSACTION', 'SELECT … FOR UPDATE', 'ROLLBACK',
      'START TRANSACTION', 'SELECT kind,', 'ROLLBACK',
      'START TRANSACTION', 'SELECT … FOR UPDATE', 'UPDATE `keywarden_keys_usage`', 'COMMIT',
    ])
  })
})

type Step =
  | { readonly kind: 'consume'; readonly request: UsageRequest }
  | { readonly kind: 'adjust'; readonly change: CreditAdjustment }
  | { readonly kind: 'purge'; readonly now: number }

/**
 * A deterministic sequence over a few counters and balances: token buckets with fractional refills,
 * a fixed window, a refilling balance, costs 0 to 3, dry runs, instants that sometimes go backwards,
 * adjustments and purges.
 */
function* mixedSequence(seed: number): Generator<Step> {
  let state = seed
  const random = () => (state = (state * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
  const counters: RateCounter[] = [
    { id: 'rate:mix:a', algorithm: 'token-bucket', limit: 3, capacity: 5, windowMs: 7_000 },
    { id: 'rate:mix:b', algorithm: 'token-bucket', limit: 7, capacity: 2, windowMs: 333 },
    { id: 'rate:mix:c', algorithm: 'fixed-window', limit: 4, capacity: 4, windowMs: 1_000 },
  ]
  const PERIOD = 5_000
  const pools = (now: number): CreditPool[] => [pool('credits:mix:e', 20), pool('credits:mix:f', 5, { amount: 5, periodStart: now - (now % PERIOD) })]
  let now = T0
  for (let i = 0; i < 300; i++) {
    now += Math.floor(random() * 450) - 50
    const roll = random()
    if (roll < 0.1) {
      yield { kind: 'adjust', change: { pool: pick(pools(now)), now, mode: random() < 0.3 ? 'set' : 'add', amount: Math.floor(random() * 30) - 10 } }
    } else if (roll < 0.13) {
      yield { kind: 'purge', now }
    } else {
      const rate = counters.filter(() => random() < 0.5)
      const credits = random() < 0.5 ? pick(pools(now)) : null
      yield { kind: 'consume', request: { now, cost: Math.floor(random() * 4), commit: random() < 0.85, rate, credits } }
    }
  }
}
