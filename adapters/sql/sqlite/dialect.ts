/**
 * Every statement the SQLite store runs. Parameters are `?`; identifiers are double-quoted.
 */
import { auditStatements } from '../shared/audit.js'
import { COLUMNS, MUTABLE_COLUMNS } from '../shared/columns.js'
import { errorProperty } from '../shared/driver-error.js'
import type { MigrationStatement, SqlDialect, UsageKey, UsageRow, UsageStatements } from '../shared/seams.js'

function rowParams(rows: readonly UsageRow[]): (string | number | null)[] {
  return rows.flatMap((row) => [row.kind, row.id, row.value, row.at, row.expiresAt])
}

/** The usage table's statements. */
function usageStatements(usage: string): UsageStatements {
  const insert = (rows: readonly UsageRow[]) => `INSERT INTO ${usage} (kind, id, value, at, expires_at) VALUES ${rows.map(() => '(?, ?, ?, ?, ?)').join(', ')}`
  return {
    absentRowsLockGaps: false,
    // Nothing to lock row by row: a consumption runs in BEGIN IMMEDIATE, holding the database's write lock.
    read: (keys: readonly UsageKey[]) => ({
      sql: `SELECT kind, id, value, at FROM ${usage} WHERE ${keys.map(() => '(kind = ? AND id = ?)').join(' OR ')}`,
      params: keys.flatMap((key) => [key.kind, key.id]),
    }),
    insert: (rows) => ({ sql: insert(rows), params: rowParams(rows) }),
    update: (rows) => [
      { sql: `${insert(rows)} ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value, at = excluded.at, expires_at = excluded.expires_at`, params: rowParams(rows) },
    ],
    purge: (now) => ({ sql: `DELETE FROM ${usage} WHERE expires_at IS NOT NULL AND expires_at <= ?`, params: [now] }),
  }
}

/** The SQLite statements for `table` (already validated). */
export function sqliteDialect(table: string): SqlDialect {
  const quoted = `"${table}"`
  const usage = `"${table}_usage"`
  const audit = `"${table}_audit"`
  const columns = COLUMNS.join(', ')
  const set = MUTABLE_COLUMNS.map((column) => `${column} = ?`).join(', ')
  return {
    // TEXT compares with SQLite's default BINARY collation (memcmp of UTF-8: exact and in code point
    // order). Instants are epoch ms in INTEGER (64-bit); booleans are 0/1. NOT NULL on the primary
    // key because SQLite otherwise accepts NULL in a non-INTEGER primary key.
    migration: [
      `CREATE TABLE IF NOT EXISTS ${quoted} (
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
      // The columns added after 0.1.0. SQLite has no ADD COLUMN IF NOT EXISTS: once a column is there,
      // its ALTER TABLE fails with "duplicate column name", which migrate() takes as done.
      { sql: `ALTER TABLE ${quoted} ADD COLUMN policy TEXT`, addsColumn: true },
      { sql: `ALTER TABLE ${quoted} ADD COLUMN has_credits INTEGER NOT NULL DEFAULT 0`, addsColumn: true },
      { sql: `ALTER TABLE ${quoted} ADD COLUMN created_by TEXT`, addsColumn: true },
      { sql: `ALTER TABLE ${quoted} ADD COLUMN updated_by TEXT`, addsColumn: true },
      { sql: `ALTER TABLE ${quoted} ADD COLUMN disabled_reason TEXT`, addsColumn: true },
      { sql: `ALTER TABLE ${quoted} ADD COLUMN disabled_by TEXT`, addsColumn: true },
      // Quota count and list by owner; list by tenant; list order and keyset; expiresWithin.
      `CREATE INDEX IF NOT EXISTS "${table}_owner_idx" ON ${quoted} (owner_id, created_at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_tenant_idx" ON ${quoted} (tenant_id, created_at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_created_idx" ON ${quoted} (created_at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_expires_idx" ON ${quoted} (expires_at)`,
      // Rate counter states and credit balances; a counter and a balance may share an ID, hence the
      // kind in the key. value is REAL: token buckets refill in fractions, and balances (integers) are
      // exact up to 2^53. expires_at is when a counter state stops mattering (NULL for balances).
      `CREATE TABLE IF NOT EXISTS ${usage} (
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  value REAL NOT NULL,
  at INTEGER,
  expires_at INTEGER,
  PRIMARY KEY (kind, id)
) WITHOUT ROWID`,
      // purgeUsage.
      `CREATE INDEX IF NOT EXISTS "${table}_usage_exp_idx" ON ${usage} (expires_at)`,
      // The audit trail: each entry whole as JSON, and the columns its filters and newest-first order use.
      `CREATE TABLE IF NOT EXISTS ${audit} (
  id TEXT NOT NULL PRIMARY KEY,
  at INTEGER NOT NULL,
  action TEXT NOT NULL,
  key_id TEXT,
  owner_id TEXT,
  tenant_id TEXT,
  actor_id TEXT,
  entry_json TEXT NOT NULL
) WITHOUT ROWID`,
      `CREATE INDEX IF NOT EXISTS "${table}_audit_at_idx" ON ${audit} (at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_audit_key_idx" ON ${audit} (key_id, at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_audit_tenant_idx" ON ${audit} (tenant_id, at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_audit_owner_idx" ON ${audit} (owner_id, at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_audit_actor_idx" ON ${audit} (actor_id, at, id)`,
    ].map((statement): MigrationStatement => (typeof statement === 'string' ? { sql: statement } : statement)),
    insert: `INSERT INTO ${quoted} (${columns}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
    select: `SELECT ${columns} FROM ${quoted}`,
    selectById: `SELECT ${columns} FROM ${quoted} WHERE id = ?`,
    // Nothing to lock row by row: a guarded consumption runs in BEGIN IMMEDIATE, holding the write lock.
    selectByIdLocked: `SELECT ${columns} FROM ${quoted} WHERE id = ?`,
    existsById: `SELECT 1 AS found FROM ${quoted} WHERE id = ?`,
    // IS compares NULLs as equal: a NULL tenant matches the rows without one. owner_id = ? leads, so the
    // owner index (owner_id, created_at, id) finds the rows; tenant and revocation are checked on each.
    countActiveByOwnerInTenant: `SELECT count(*) AS n FROM ${quoted} WHERE owner_id = ? AND tenant_id IS ? AND revoked_at IS NULL`,
    update: `UPDATE ${quoted} SET ${set}, version = ? WHERE id = ? AND version = ?`,
    deleteById: `DELETE FROM ${quoted} WHERE id = ?`,
    touch: `UPDATE ${quoted} SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
    placeholder: () => '?',
    // better-sqlite3 binds numbers, strings, bigints and buffers, not booleans.
    boolean: (value) => (value ? 1 : 0),
    limit: (value) => value,
    // No per-owner lock: the SqliteStore transaction starts with BEGIN IMMEDIATE, which takes the
    // database's single write lock before the count, so writers (other connections and processes
    // included) are serialised for the whole count-and-insert.
    lockOwner: () => ({ before: [], inside: [] }),
    usage: usageStatements(usage),
    audit: auditStatements(audit, { placeholder: () => '?', limit: (value) => value, boundedDelete: 'subselect' }),
    isUniqueViolation: (error) => errorProperty(error, 'code') === 'SQLITE_CONSTRAINT_PRIMARYKEY',
    isDuplicateColumn: (error) => errorProperty(error, 'code') === 'SQLITE_ERROR' && /^duplicate column name: /.test(String(errorProperty(error, 'message'))),
    // SQLITE_BUSY comes only after the connection's busy timeout has already waited; not retried.
    isRetryable: () => false,
  }
}
