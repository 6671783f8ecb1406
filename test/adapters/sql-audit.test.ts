/**
 * The audit trail on the SQL stores, beyond the conformance suite: a change and its entry are one
 * transaction, shown by fault injection between the two statements (a trigger that fails the entry's
 * INSERT on PostgreSQL, MariaDB and SQLite, and a write lock held by another SQLite connection), and
 * a 0.1.0 table migrates to the audit schema with its rows intact.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { MySqlStore, PostgresStore, SqliteStore, type SqlStore } from '../../adapters/sql/index.js'
import { StoreError, type AuditRecord, type StoredKey } from '../../src/index.js'
import { makeRecord } from '../conformance/records.js'
import { mariadbGate, postgresGate } from '../support/gates.js'
import { SERVICES, uniqueSuffix } from '../support/services.js'
import { Database } from '../support/sqlite.js'

const T = 1_800_000_000_000

function entry(id: string, keyId: string, action: AuditRecord['action'] = 'updated'): AuditRecord {
  return { id, at: T, action, keyId, ownerId: 'o1', tenantId: 't1', actor: { type: 'user', id: 'admin' }, reason: 'fault test', requestId: null, changes: { name: { from: 'a', to: 'b' } } }
}

/** Every write with an entry, run while the entry's INSERT fails: each rejects and changes nothing. */
async function expectNoHalfWrites(store: SqlStore, failEntries: () => Promise<void>, allowEntries: () => Promise<void>): Promise<void> {
  const record = makeRecord({ id: 'faulted1', ownerId: 'o1', tenantId: 't1' })
  expect(await store.insert(record, null)).toBe('inserted')
  await failEntries()
  try {
    await expect(store.insert(makeRecord({ id: 'faulted2' }), null, entry('e-insert', 'faulted2', 'created'))).rejects.toBeInstanceOf(StoreError)
    await expect(store.insert(makeRecord({ id: 'faulted3', ownerId: 'o1' }), { ownerId: 'o1', tenantId: null, limit: 5 }, entry('e-quota', 'faulted3', 'created'))).rejects.toBeInstanceOf(StoreError)
    await expect(store.update({ ...record, name: 'changed', version: 2 }, 1, entry('e-update', record.id))).rejects.toBeInstanceOf(StoreError)
    await expect(store.delete(record.id, entry('e-delete', record.id, 'deleted'))).rejects.toBeInstanceOf(StoreError)
    const pool = { id: 'pool-1', initial: 0, refill: null }
    await expect(store.adjustCredits({ pool, now: T, mode: 'set', amount: 50, audit: entry('e-credits', record.id, 'credits_changed') })).rejects.toBeInstanceOf(StoreError)
  } finally {
    await allowEntries()
  }
  // Nothing of any of them is there: no key, no change, no deletion, no balance, no entry.
  expect(await store.get('faulted2')).toBeNull()
  expect(await store.get('faulted3')).toBeNull()
  expect(await store.get(record.id)).toMatchObject({ name: record.name, version: 1 } satisfies Partial<StoredKey>)
  expect((await store.consumeUsage({ now: T, cost: 0, commit: false, rate: [], credits: { id: 'pool-1', initial: 0, refill: null } })).credits?.remaining).toBe(0)
  expect(await store.listAudit({ limit: 100 })).toEqual([])
  // With the fault gone the same writes land, each with its entry.
  expect(await store.update({ ...record, name: 'changed', version: 2 }, 1, entry('e-update', record.id))).toBe('updated')
  expect(await store.delete(record.id, entry('e-delete', record.id, 'deleted'))).toBe(true)
  expect((await store.listAudit({ keyId: record.id, limit: 10 })).map((found) => found.id)).toEqual(['e-update', 'e-delete'].sort().reverse())
}

const postgres = await postgresGate()
const mariadb = await mariadbGate()

describe.skipIf(!postgres.available)('PostgreSQL audit trail', () => {
  const pool = postgres.available ? new pg.Pool({ ...SERVICES.postgres, max: 4 }) : undefined
  afterAll(() => pool?.end())

  it('a change and its entry commit together: a failing entry INSERT rolls the change back', async () => {
    const store = new PostgresStore({ pool: pool!, table: `kwa_${uniqueSuffix()}` })
    const audit = `"${store.table}_audit"`
    await store.migrate()
    try {
      await pool!.query(`CREATE FUNCTION "${store.table}_refuse"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$`)
      await expectNoHalfWrites(
        store,
        () => pool!.query(`CREATE TRIGGER refuse BEFORE INSERT ON ${audit} FOR EACH ROW EXECUTE PROCEDURE "${store.table}_refuse"()`).then(() => undefined),
        () => pool!.query(`DROP TRIGGER refuse ON ${audit}`).then(() => undefined),
      )
    } finally {
      await pool!.query(`DROP TABLE IF EXISTS "${store.table}", "${store.table}_usage", ${audit}; DROP FUNCTION IF EXISTS "${store.table}_consume"; DROP FUNCTION IF EXISTS "${store.table}_refuse"`)
    }
  })

  it('migrates a 0.1.0 table: the actor columns and the audit table are added, old rows read with null actors', async () => {
    const table = `kwa_${uniqueSuffix()}`
    const store = new PostgresStore({ pool: pool!, table })
    try {
      await pool!.query(OLD_POSTGRES_TABLE(table))
      await pool!.query(`INSERT INTO "${table}" (id, name, environment, scopes_json, roles_json, groups_json, metadata_json, start, hash, created_at, updated_at, enabled, version) VALUES ('old1', 'legacy', 'live', '[]', '[]', '[]', '{}', 'abcd', 'v1$x', 1, 1, true, 3)`)
      await store.migrate()
      await store.migrate()
      expect(await store.get('old1')).toMatchObject({ name: 'legacy', version: 3, createdBy: null, updatedBy: null, disabledReason: null, disabledBy: null })
      expect(await store.delete('old1', entry('e-old', 'old1', 'deleted'))).toBe(true)
      expect(await store.listAudit({ keyId: 'old1', limit: 5 })).toHaveLength(1)
    } finally {
      await pool!.query(`DROP TABLE IF EXISTS "${table}", "${table}_usage", "${table}_audit"; DROP FUNCTION IF EXISTS "${table}_consume"`)
    }
  })
})

describe.skipIf(!mariadb.available)('MariaDB audit trail', () => {
  const pool = mariadb.available ? mysql.createPool({ ...SERVICES.mariadb, connectionLimit: 4 }) : undefined
  afterAll(() => pool?.end())

  it('a change and its entry commit together: a failing entry INSERT rolls the change back', async () => {
    const store = new MySqlStore({ pool: pool!, table: `kwa_${uniqueSuffix()}` })
    const audit = `\`${store.table}_audit\``
    await store.migrate()
    try {
      await expectNoHalfWrites(
        store,
        () => pool!.query(`CREATE TRIGGER \`${store.table}_refuse\` BEFORE INSERT ON ${audit} FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected fault'`).then(() => undefined),
        () => pool!.query(`DROP TRIGGER \`${store.table}_refuse\``).then(() => undefined),
      )
    } finally {
      await pool!.query(`DROP TABLE IF EXISTS \`${store.table}\`, \`${store.table}_locks\`, \`${store.table}_usage\`, ${audit}`)
    }
  })
})

describe('SQLite audit trail', () => {
  const directory = mkdtempSync(join(tmpdir(), 'keywarden-sqlite-audit-'))
  const file = join(directory, 'keys.db')
  const database = new Database(file, { timeout: 50 })
  database.pragma('journal_mode = WAL')
  const other = new Database(file, { timeout: 50 })
  afterAll(() => {
    database.close()
    other.close()
    rmSync(directory, { recursive: true, force: true })
  })

  it('a change and its entry commit together: a failing entry INSERT (RAISE) rolls the change back', async () => {
    const store = new SqliteStore({ database, table: `kwa_${uniqueSuffix()}` })
    await store.migrate()
    await expectNoHalfWrites(
      store,
      async () => void database.exec(`CREATE TRIGGER "${store.table}_refuse" BEFORE INSERT ON "${store.table}_audit" BEGIN SELECT RAISE(ABORT, 'injected fault'); END`),
      async () => void database.exec(`DROP TRIGGER "${store.table}_refuse"`),
    )
  })

  it('with the database locked by another connection, a write fails whole and lands whole once released', async () => {
    const store = new SqliteStore({ database, table: `kwa_${uniqueSuffix()}` })
    await store.migrate()
    const record = makeRecord({ id: 'locked01' })
    expect(await store.insert(record, null)).toBe('inserted')
    other.exec('BEGIN IMMEDIATE')
    try {
      await expect(store.update({ ...record, name: 'changed', version: 2 }, 1, entry('e-locked', record.id))).rejects.toBeInstanceOf(StoreError)
      await expect(store.delete(record.id, entry('e-locked-delete', record.id, 'deleted'))).rejects.toBeInstanceOf(StoreError)
    } finally {
      other.exec('ROLLBACK')
    }
    expect(await store.get(record.id)).toMatchObject({ name: record.name, version: 1 })
    expect(await store.listAudit({ limit: 10 })).toEqual([])
    expect(await store.update({ ...record, name: 'changed', version: 2 }, 1, entry('e-locked', record.id))).toBe('updated')
    expect((await store.listAudit({ limit: 10 })).map((found) => found.id)).toEqual(['e-locked'])
  })
})

/** The keys table as 0.1.0 created it on PostgreSQL. */
function OLD_POSTGRES_TABLE(table: string): string {
  return `CREATE TABLE "${table}" (
  id VARCHAR(256) COLLATE "C" NOT NULL PRIMARY KEY, name TEXT NOT NULL, description TEXT, owner_id VARCHAR(256) COLLATE "C",
  tenant_id VARCHAR(256) COLLATE "C", environment VARCHAR(256) COLLATE "C" NOT NULL, key_type VARCHAR(256) COLLATE "C",
  scopes_json TEXT NOT NULL, roles_json TEXT NOT NULL, groups_json TEXT NOT NULL, metadata_json TEXT NOT NULL,
  start TEXT NOT NULL, hash TEXT NOT NULL, previous_hash TEXT, previous_hash_expires_at BIGINT, created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL, expires_at BIGINT, last_used_at BIGINT, enabled BOOLEAN NOT NULL, revoked_at BIGINT,
  expiry_notice_for BIGINT, version INTEGER NOT NULL)`
}
