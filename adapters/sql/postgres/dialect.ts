/**
 * Every statement the PostgreSQL store runs. Parameters are `$1`, `$2`, …; identifiers are double-quoted.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { COLUMNS, MUTABLE_COLUMNS } from '../shared/columns.js'
import { errorProperty } from '../shared/driver-error.js'
import type { SqlDialect, UsageKey, UsageRow, UsageStatements } from '../shared/seams.js'

/**
 * The advisory lock key of one owner: the first 64 bits of SHA-256 over table and owner. Two owners
 * that collide only wait for each other; they never share a count.
 */
function advisoryLockKey(table: string, ownerId: string): string {
  const digest = sha256(utf8ToBytes(`keywarden\u0000${table}\u0000${ownerId}`))
  return new DataView(digest.buffer, digest.byteOffset, 8).getBigInt64(0).toString()
}

/** `($1, $2), ($3, $4), …`: one tuple of `width` placeholders per item. */
function tuples(count: number, width: number): string {
  return Array.from({ length: count }, (_, row) => `(${Array.from({ length: width }, (_, column) => `$${row * width + column + 1}`).join(', ')})`).join(', ')
}

function rowParams(rows: readonly UsageRow[]): (string | number | null)[] {
  return rows.flatMap((row) => [row.kind, row.id, row.value, row.at, row.expiresAt])
}

/** The usage table's statements. */
function usageStatements(usage: string): UsageStatements {
  const insert = (rows: readonly UsageRow[]) => `INSERT INTO ${usage} (kind, id, value, at, expires_at) VALUES ${tuples(rows.length, 5)}`
  return {
    // ORDER BY before FOR UPDATE: the rows are locked in key order, so two consumptions sharing
    // counters never wait for each other crosswise. Absent rows lock nothing (see SqlStore.consumeUsage).
    read: (keys: readonly UsageKey[], lock: boolean) => ({
      sql: `SELECT kind, id, value, at FROM ${usage} WHERE (kind, id) IN (${tuples(keys.length, 2)})${lock ? ' ORDER BY kind, id FOR UPDATE' : ''}`,
      params: keys.flatMap((key) => [key.kind, key.id]),
    }),
    insert: (rows) => ({ sql: insert(rows), params: rowParams(rows) }),
    // The rows exist and are locked by this transaction, so the upsert always takes its update branch:
    // every row in one statement, its parameters typed by the columns they go to.
    update: (rows) => [
      { sql: `${insert(rows)} ON CONFLICT (kind, id) DO UPDATE SET value = EXCLUDED.value, at = EXCLUDED.at, expires_at = EXCLUDED.expires_at`, params: rowParams(rows) },
    ],
    purge: (now) => ({ sql: `DELETE FROM ${usage} WHERE expires_at IS NOT NULL AND expires_at <= $1`, params: [now] }),
  }
}

/** The PostgreSQL statements for `table` (already validated). */
export function postgresDialect(table: string): SqlDialect {
  const quoted = `"${table}"`
  const usage = `"${table}_usage"`
  const columns = COLUMNS.join(', ')
  const set = MUTABLE_COLUMNS.map((column, index) => `${column} = $${index + 1}`).join(', ')
  const next = MUTABLE_COLUMNS.length + 1
  return {
    // COLLATE "C" compares and sorts by code point whatever the database's default collation is, so
    // IDs order in binary and 'Alice' and 'alice' stay different owners. Instants are epoch ms in
    // BIGINT: exact, and untouched by the session time zone. JSON is kept as text, byte for byte
    // (JSONB would reorder keys and drop duplicate ones).
    migration: [
      `CREATE TABLE IF NOT EXISTS ${quoted} (
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
      // The columns added after 0.1.0, to old tables and new ones alike (PostgreSQL 9.6+; a NOT NULL
      // DEFAULT column is added without rewriting the table since PostgreSQL 11).
      `ALTER TABLE ${quoted} ADD COLUMN IF NOT EXISTS policy VARCHAR(64) COLLATE "C", ADD COLUMN IF NOT EXISTS has_credits BOOLEAN NOT NULL DEFAULT FALSE`,
      // Quota count and list by owner; list by tenant; list order and keyset; expiresWithin.
      `CREATE INDEX IF NOT EXISTS "${table}_owner_idx" ON ${quoted} (owner_id, created_at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_tenant_idx" ON ${quoted} (tenant_id, created_at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_created_idx" ON ${quoted} (created_at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_expires_idx" ON ${quoted} (expires_at)`,
      // Rate counter states and credit balances. A counter and a balance may share an ID, hence the
      // kind in the key. value is a double: token buckets refill in fractions, and balances (integers)
      // are exact up to 2^53. expires_at is when a counter state stops mattering (NULL for balances).
      `CREATE TABLE IF NOT EXISTS ${usage} (
  kind VARCHAR(8) COLLATE "C" NOT NULL,
  id VARCHAR(600) COLLATE "C" NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  at BIGINT,
  expires_at BIGINT,
  PRIMARY KEY (kind, id)
)`,
      // purgeUsage.
      `CREATE INDEX IF NOT EXISTS "${table}_usage_exp_idx" ON ${usage} (expires_at)`,
    ].map((sql) => ({ sql })),
    insert: `INSERT INTO ${quoted} (${columns}) VALUES (${COLUMNS.map((_, index) => `$${index + 1}`).join(', ')})`,
    select: `SELECT ${columns} FROM ${quoted}`,
    selectById: `SELECT ${columns} FROM ${quoted} WHERE id = $1`,
    existsById: `SELECT 1 AS found FROM ${quoted} WHERE id = $1`,
    // IS NOT DISTINCT FROM: a NULL tenant matches the rows without one. owner_id = $1 leads, so the
    // owner index (owner_id, created_at, id) finds the rows; tenant and revocation are checked on each.
    countActiveByOwnerInTenant: `SELECT count(*) AS n FROM ${quoted} WHERE owner_id = $1 AND tenant_id IS NOT DISTINCT FROM $2 AND revoked_at IS NULL`,
    update: `UPDATE ${quoted} SET ${set}, version = $${next} WHERE id = $${next + 1} AND version = $${next + 2}`,
    deleteById: `DELETE FROM ${quoted} WHERE id = $1`,
    touch: `UPDATE ${quoted} SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)`,
    placeholder: (index) => `$${index}`,
    boolean: (value) => value,
    limit: (value) => value,
    // A transaction-scoped advisory lock per owner: at READ COMMITTED each later statement takes a fresh
    // snapshot, so once the lock is held the count sees every insert committed by earlier holders, and
    // no later one can commit before we do. Released by COMMIT/ROLLBACK, so it cannot leak into the
    // pool, and it works behind transaction-mode poolers (PgBouncer). No lock table to maintain.
    // The key leaves the tenant out, as in 0.1.0: the same owner ID in two tenants only waits, and
    // instances of both versions keep serialising on one key during a rolling upgrade.
    lockOwner: (ownerId) => ({
      before: [],
      inside: [{ sql: 'SELECT pg_advisory_xact_lock($1::bigint)', params: [advisoryLockKey(table, ownerId)] }],
    }),
    usage: usageStatements(usage),
    isUniqueViolation: (error) => errorProperty(error, 'code') === '23505',
    // duplicate_column; no statement relies on it (ADD COLUMN IF NOT EXISTS).
    isDuplicateColumn: (error) => errorProperty(error, 'code') === '42701',
    // deadlock_detected, and serialization_failure for databases whose default isolation is SERIALIZABLE.
    isRetryable: (error) => ['40P01', '40001'].includes(errorProperty(error, 'code') as string),
  }
}
