/**
 * Every statement the MySQL / MariaDB store runs. Parameters are `?`; identifiers are backquoted.
 */
import { auditStatements } from '../shared/audit.js'
import { COLUMNS, MUTABLE_COLUMNS } from '../shared/columns.js'
import { errorProperty } from '../shared/driver-error.js'
import type { SqlDialect, UsageKey, UsageRow, UsageStatements } from '../shared/seams.js'

const ER_DUP_FIELDNAME = 1060
const ER_DUP_ENTRY = 1062
const ER_LOCK_DEADLOCK = 1213

/** The usage table's statements. */
function usageStatements(usage: string): UsageStatements {
  return {
    absentRowsLockGaps: true,
    // Equalities on the primary key, OR-ed: a range scan of the primary key, which locks the rows in key
    // order (two consumptions sharing counters never wait for each other crosswise) and no other row.
    // An absent row gets a gap lock at REPEATABLE READ instead, which many transactions can hold at
    // once: absentRowsLockGaps makes SqlStore insert absent rows from a transaction that holds none.
    read: (keys: readonly UsageKey[], lock: boolean) => ({
      sql: `SELECT kind, id, value, at FROM ${usage} WHERE ${keys.map(() => '(kind = ? AND id = ?)').join(' OR ')}${lock ? ' FOR UPDATE' : ''}`,
      params: keys.flatMap((key) => [key.kind, key.id]),
    }),
    insert: (rows: readonly UsageRow[]) => ({
      sql: `INSERT INTO ${usage} (kind, id, value, at, expires_at) VALUES ${rows.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
      params: rows.flatMap((row) => [row.kind, row.id, row.value, row.at, row.expiresAt]),
    }),
    // One UPDATE for all the rows, one round trip. (A multi-row upsert needs VALUES(), deprecated in
    // MySQL 8.0.20, or a row alias, which MariaDB lacks.) With several rows each column takes its
    // value from a CASE over the rows' keys; `? + 0e0` and `CAST(? AS SIGNED)` type the parameters
    // as the DOUBLE and BIGINT they are assigned to, whatever type a server would infer for a bare
    // parameter in a CASE (mysql2 sends every number as a DOUBLE: the cast of an integral one is exact).
    update: (rows: readonly UsageRow[]) => {
      if (rows.length === 1) {
        const [row] = rows as [UsageRow]
        return [{ sql: `UPDATE ${usage} SET value = ?, at = ?, expires_at = ? WHERE kind = ? AND id = ?`, params: [row.value, row.at, row.expiresAt, row.kind, row.id] }]
      }
      const cases = (value: string) => `CASE ${rows.map(() => `WHEN kind = ? AND id = ? THEN ${value}`).join(' ')} END`
      const of = (pick: (row: UsageRow) => number | null) => rows.flatMap((row) => [row.kind, row.id, pick(row)])
      return [
        {
          sql: `UPDATE ${usage} SET value = ${cases('? + 0e0')}, at = ${cases('CAST(? AS SIGNED)')}, expires_at = ${cases('CAST(? AS SIGNED)')} WHERE ${rows.map(() => '(kind = ? AND id = ?)').join(' OR ')}`,
          params: [...of((row) => row.value), ...of((row) => row.at), ...of((row) => row.expiresAt), ...rows.flatMap((row) => [row.kind, row.id])],
        },
      ]
    },
    purge: (now: number) => ({ sql: `DELETE FROM ${usage} WHERE expires_at IS NOT NULL AND expires_at <= ?`, params: [now] }),
  }
}

/** The MySQL / MariaDB statements for `table` (already validated). */
export function mysqlDialect(table: string): SqlDialect {
  const quoted = `\`${table}\``
  const locks = `\`${table}_locks\``
  const usage = `\`${table}_usage\``
  const audit = `\`${table}_audit\``
  const columns = COLUMNS.join(', ')
  const set = MUTABLE_COLUMNS.map((column) => `${column} = ?`).join(', ')
  return {
    // IDs, owners, tenants, environments and types are VARBINARY (UTF-8 bytes): comparison and order
    // are exact and binary. The _bin collations of VARCHAR are PAD SPACE, so 'a' = 'a ' there; VARBINARY
    // also needs no collation name that differs between MySQL and MariaDB. 1024 bytes hold 256
    // characters of UTF-8. Instants are epoch ms in BIGINT: exact, and untouched by time_zone. JSON is
    // kept as text, byte for byte. The indexes are declared in CREATE TABLE because MySQL (unlike
    // MariaDB) has no CREATE INDEX IF NOT EXISTS.
    migration: [
      `CREATE TABLE IF NOT EXISTS ${quoted} (
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
  INDEX \`${table}_owner_idx\` (owner_id, created_at, id),
  INDEX \`${table}_tenant_idx\` (tenant_id, created_at, id),
  INDEX \`${table}_created_idx\` (created_at, id),
  INDEX \`${table}_expires_idx\` (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      // The columns added after 0.1.0. MySQL has no ADD COLUMN IF NOT EXISTS (MariaDB has), so the
      // ALTER TABLE is built from information_schema for just the missing columns ('DO 0' when none
      // is) and run as a prepared statement: four statements, on one connection, in the text protocol.
      `SET @keywarden_upgrade = (
  SELECT IF(COUNT(*) = 6, 'DO 0', CONCAT('ALTER TABLE ${quoted} ', CONCAT_WS(', ',
    IF(SUM(column_name = 'policy') > 0, NULL, 'ADD COLUMN policy VARBINARY(256) NULL'),
    IF(SUM(column_name = 'has_credits') > 0, NULL, 'ADD COLUMN has_credits BOOLEAN NOT NULL DEFAULT FALSE'),
    IF(SUM(column_name = 'created_by') > 0, NULL, 'ADD COLUMN created_by MEDIUMTEXT NULL'),
    IF(SUM(column_name = 'updated_by') > 0, NULL, 'ADD COLUMN updated_by MEDIUMTEXT NULL'),
    IF(SUM(column_name = 'disabled_reason') > 0, NULL, 'ADD COLUMN disabled_reason TEXT NULL'),
    IF(SUM(column_name = 'disabled_by') > 0, NULL, 'ADD COLUMN disabled_by MEDIUMTEXT NULL'))))
  FROM information_schema.columns
  WHERE table_schema = DATABASE() AND table_name = '${table}'
    AND column_name IN ('policy', 'has_credits', 'created_by', 'updated_by', 'disabled_reason', 'disabled_by')
)`,
      'PREPARE keywarden_upgrade FROM @keywarden_upgrade',
      'EXECUTE keywarden_upgrade',
      'DEALLOCATE PREPARE keywarden_upgrade',
      // One row per owner that ever inserted under a quota; the quota insert locks it (see lockOwner).
      `CREATE TABLE IF NOT EXISTS ${locks} (
  owner_id VARBINARY(1024) NOT NULL,
  PRIMARY KEY (owner_id)
) ENGINE=InnoDB`,
      // Rate counter states and credit balances; a counter and a balance may share an ID, hence the kind
      // in the key. An ID is up to 600 characters: 2400 bytes of UTF-8, so the key (2408 bytes) fits
      // InnoDB's 3072-byte limit of the DYNAMIC row format. value is a double: token buckets refill in
      // fractions, and balances (integers) are exact up to 2^53. expires_at is when a counter state
      // stops mattering (NULL for balances), indexed for purgeUsage.
      `CREATE TABLE IF NOT EXISTS ${usage} (
  kind VARBINARY(8) NOT NULL,
  id VARBINARY(2400) NOT NULL,
  value DOUBLE NOT NULL,
  at BIGINT NULL,
  expires_at BIGINT NULL,
  PRIMARY KEY (kind, id),
  INDEX \`${table}_usage_exp_idx\` (expires_at)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC`,
      // The audit trail: each entry whole as JSON, and the columns its filters and newest-first order use.
      `CREATE TABLE IF NOT EXISTS ${audit} (
  id VARBINARY(256) NOT NULL,
  at BIGINT NOT NULL,
  action VARBINARY(32) NOT NULL,
  key_id VARBINARY(1024) NULL,
  owner_id VARBINARY(1024) NULL,
  tenant_id VARBINARY(1024) NULL,
  actor_id VARBINARY(1024) NULL,
  entry_json MEDIUMTEXT NOT NULL,
  PRIMARY KEY (id),
  INDEX \`${table}_audit_at_idx\` (at, id),
  INDEX \`${table}_audit_key_idx\` (key_id, at, id),
  INDEX \`${table}_audit_tenant_idx\` (tenant_id, at, id),
  INDEX \`${table}_audit_owner_idx\` (owner_id, at, id),
  INDEX \`${table}_audit_actor_idx\` (actor_id, at, id)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    ].map((sql) => ({ sql })),
    insert: `INSERT INTO ${quoted} (${columns}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
    select: `SELECT ${columns} FROM ${quoted}`,
    selectById: `SELECT ${columns} FROM ${quoted} WHERE id = ?`,
    // A shared record lock on the key row (the primary key finds it: no gap lock while it exists).
    // LOCK IN SHARE MODE rather than FOR SHARE: MariaDB and MySQL 5.7 know only this spelling.
    selectByIdLocked: `SELECT ${columns} FROM ${quoted} WHERE id = ? LOCK IN SHARE MODE`,
    existsById: `SELECT 1 AS found FROM ${quoted} WHERE id = ?`,
    // <=> is MySQL's null-safe equality: a NULL tenant matches the rows without one. owner_id = ? leads,
    // so the owner index (owner_id, created_at, id) finds the rows; tenant and revocation are checked on each.
    countActiveByOwnerInTenant: `SELECT COUNT(*) AS n FROM ${quoted} WHERE owner_id = ? AND tenant_id <=> ? AND revoked_at IS NULL`,
    update: `UPDATE ${quoted} SET ${set}, version = ? WHERE id = ? AND version = ?`,
    deleteById: `DELETE FROM ${quoted} WHERE id = ?`,
    touch: `UPDATE ${quoted} SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
    placeholder: () => '?',
    boolean: (value) => value,
    // mysql2 sends numbers as DOUBLE, which MySQL 8.0.22+ refuses in LIMIT; a string works everywhere.
    limit: (value) => String(value),
    // A lock row per owner, locked with SELECT … FOR UPDATE inside the transaction.
    // - The row is created first, in its own autocommit statement, so the locking read always finds an
    //   existing row by primary key: InnoDB then takes a record lock only, never the gap locks that a
    //   locking read of a missing row (or of the owner's range in the keys table) takes at REPEATABLE
    //   READ, and that deadlock concurrent inserts of different owners.
    // - At REPEATABLE READ the snapshot of a transaction is taken by its first plain read, not by BEGIN.
    //   Our first plain read (the ID check) runs after the lock is granted, so the count sees every
    //   insert committed by earlier holders.
    // - Unlike GET_LOCK, the row lock is released by COMMIT/ROLLBACK (or a dropped connection), so it
    //   can never stay behind on a pooled connection.
    // - One row per owner ID, across tenants: the row's key needs no tenant (a NULL cannot be part of a
    //   primary key, and 0.1.0 tables keep their lock table); the same owner ID in two tenants only waits.
    // Deadlocks are still possible in principle (InnoDB can report one between the concurrent upserts
    // of a new owner's row); SqlStore retries the whole insert on ER_LOCK_DEADLOCK.
    lockOwner: (ownerId) => ({
      before: [{ sql: `INSERT INTO ${locks} (owner_id) VALUES (?) ON DUPLICATE KEY UPDATE owner_id = owner_id`, params: [ownerId] }],
      inside: [{ sql: `SELECT owner_id FROM ${locks} WHERE owner_id = ? FOR UPDATE`, params: [ownerId] }],
    }),
    usage: usageStatements(usage),
    audit: auditStatements(audit, { placeholder: () => '?', limit: (value) => String(value), boundedDelete: 'order-limit' }),
    isUniqueViolation: (error) => errorProperty(error, 'errno') === ER_DUP_ENTRY,
    // No statement relies on it: the upgrade adds only the missing columns.
    isDuplicateColumn: (error) => errorProperty(error, 'errno') === ER_DUP_FIELDNAME,
    isRetryable: (error) => errorProperty(error, 'errno') === ER_LOCK_DEADLOCK,
  }
}
