/**
 * Every statement the PostgreSQL store runs. Parameters are `$1`, `$2`, …; identifiers are double-quoted.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { auditStatements } from '../shared/audit.js'
import { COLUMNS, MUTABLE_COLUMNS } from '../shared/columns.js'
import { CONSUME_COLUMNS } from '../shared/usage.js'
import { errorProperty } from '../shared/driver-error.js'
import type { UsageRequest } from '../../../src/limits/usage-store.js'
import type { SqlDialect, SqlValue, UsageGuard, UsageKey, UsageRow, UsageStatements } from '../shared/seams.js'

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

// Array parameters are sent as array literals: every element quoted (so no text reads as NULL), `"`
// and `\` escaped. Numbers print as JavaScript prints them, which PostgreSQL reads back exactly.
function textArray(values: readonly string[]): string {
  return `{${values.map((value) => `"${value.replace(/["\\]/g, '\\$&')}"`).join(',')}}`
}

function numberArray(values: readonly number[]): string {
  return `{${values.join(',')}}`
}

function booleanArray(values: readonly boolean[]): string {
  return `{${values.map((value) => (value ? 't' : 'f')).join(',')}}`
}

/** The parameters of the consume function, in its argument order (see {@link consumeFunction}). */
function consumeParams(request: UsageRequest, guard: UsageGuard | null): SqlValue[] {
  const { rate, credits } = request
  return [
    guard?.keyId ?? null,
    guard?.version ?? null,
    // TEXT cannot hold U+0000, so no stored hash has it: such a hash is sent as NULL, which fails the guard.
    guard === null || guard.hash.includes('\u0000') ? null : guard.hash,
    request.now,
    request.cost,
    request.commit,
    textArray(rate.map((counter) => counter.id)),
    booleanArray(rate.map((counter) => counter.algorithm === 'fixed-window')),
    numberArray(rate.map((counter) => counter.limit)),
    numberArray(rate.map((counter) => counter.capacity)),
    numberArray(rate.map((counter) => counter.windowMs)),
    credits?.id ?? null,
    credits?.initial ?? null,
    credits?.refill?.amount ?? null,
    credits?.refill?.periodStart ?? null,
  ]
}

/**
 * `CREATE OR REPLACE FUNCTION "<table>_consume"`: a whole consumption on the server, in one statement
 * (one round trip, one implicit transaction). It repeats src/limits/usage-arithmetic.ts operation for
 * operation in double precision (IEEE 754, as JavaScript computes), and in integer arithmetic on the
 * BIGINT instants where JavaScript's are exact integers too (a window's start and end).
 *
 * - Guarded (`p_key_id` set): reads the key row `FOR NO KEY UPDATE`, so no update or delete of it
 *   commits before this consumption does; checks it as `guardHolds` does (hashes compared byte by
 *   byte with no early exit) and, when the guard fails, answers the row as JSON having written
 *   nothing. Not `FOR SHARE`: PostgreSQL lets a share lock join the share locks already held while
 *   an UPDATE waits, so verifies of a busy key that overlap would hold a revoke off for as long as
 *   they keep overlapping (and build a multixact per row). An exclusive lock queues fairly, and
 *   costs next to no concurrency: consumptions of one key lock the same counter or balance rows anyway.
 * - Locks and reads each usage row by primary key `FOR UPDATE`, in (kind, id) order as every
 *   consumption does (the balance, then the counters in byte order; a counter named twice once).
 *   Writes in the same order: an UPDATE of each row it read, an INSERT of each absent one. A row
 *   inserted by a concurrent consumption since the read fails the INSERT with a unique violation,
 *   which aborts the whole call; the store runs it again, and then finds the row. (No `ON CONFLICT DO
 *   UPDATE`, which would overwrite a state this call never read.)
 * - `p_commit` false: no lock, no write.
 *
 * Every statement inside looks rows up by primary key with scalar parameters, so PL/pgSQL settles on
 * its cached generic plans (arrays in a WHERE clause make it plan every call afresh). No object
 * depends on the tables (the key row is a RECORD), so dropping them needs no CASCADE. Changing the
 * OUT columns later needs a DROP FUNCTION first: CREATE OR REPLACE keeps a function's result type.
 */
function consumeFunction(table: string): string {
  const quoted = `"${table}"`
  const usage = `"${table}_usage"`
  return `CREATE OR REPLACE FUNCTION "${table}_consume"(
  p_key_id TEXT, p_version BIGINT, p_hash TEXT, p_now BIGINT, p_cost DOUBLE PRECISION, p_commit BOOLEAN,
  p_rate_ids TEXT[], p_rate_fixed BOOLEAN[], p_rate_limits DOUBLE PRECISION[], p_rate_capacities DOUBLE PRECISION[], p_rate_windows BIGINT[],
  p_credits_id TEXT, p_credits_initial DOUBLE PRECISION, p_refill_amount DOUBLE PRECISION, p_refill_start BIGINT,
  OUT applied BOOLEAN, OUT key_row JSON, OUT refused TEXT, OUT rate_value DOUBLE PRECISION[], OUT rate_at BIGINT[],
  OUT credits_previous DOUBLE PRECISION, OUT credits_remaining DOUBLE PRECISION, OUT key_last_used_at BIGINT
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  n INTEGER := coalesce(array_length(p_rate_ids, 1), 0);
  k RECORD;
  held BOOLEAN;
  matched BOOLEAN := false;
  presented BYTEA;
  presented_length INTEGER;
  expected BYTEA;
  difference INTEGER;
  byte_at INTEGER;
  slot INTEGER;
  c INTEGER;
  duplicate BOOLEAN;
  lock_order INTEGER[] := '{}';
  row_found BOOLEAN[] := array_fill(false, ARRAY[n]);
  row_value DOUBLE PRECISION[] := array_fill(NULL::DOUBLE PRECISION, ARRAY[n]);
  row_at BIGINT[] := array_fill(NULL::BIGINT, ARRAY[n]);
  read_value DOUBLE PRECISION;
  read_at BIGINT;
  credits_found BOOLEAN := false;
  credits_value DOUBLE PRECISION;
  credits_at BIGINT;
  balance DOUBLE PRECISION;
  balance_at BIGINT;
  write_credits BOOLEAN := false;
  passes BOOLEAN := true;
  window_start BIGINT;
  until_ms BIGINT;
BEGIN
  applied := false;
  IF p_key_id IS NOT NULL THEN
    IF p_commit THEN
      SELECT * INTO k FROM ${quoted} WHERE id = p_key_id FOR NO KEY UPDATE;
    ELSE
      SELECT * INTO k FROM ${quoted} WHERE id = p_key_id;
    END IF;
    IF NOT FOUND THEN
      RETURN;
    END IF;
    -- guardHolds: version, state and expiry first; then the hashes, in time that depends on their
    -- lengths only (the previous hash only within its grace, as there). Eight bytes a step, over
    -- both padded with zeros, which XOR to nothing. A NULL hash (one PostgreSQL cannot hold) fails.
    held := p_hash IS NOT NULL AND k.version = p_version AND k.revoked_at IS NULL AND k.enabled AND (k.expires_at IS NULL OR p_now < k.expires_at);
    IF held THEN
      presented := convert_to(p_hash, 'UTF8');
      presented_length := octet_length(presented);
      presented := presented || decode('0000000000000000', 'hex');
      FOR candidate IN 1 .. 2 LOOP
        IF candidate = 1 THEN
          expected := convert_to(k.hash, 'UTF8');
        ELSIF k.previous_hash IS NOT NULL AND k.previous_hash_expires_at IS NOT NULL AND p_now < k.previous_hash_expires_at THEN
          expected := convert_to(k.previous_hash, 'UTF8');
        ELSE
          EXIT;
        END IF;
        IF octet_length(expected) = presented_length THEN
          difference := 0;
          byte_at := 0;
          expected := expected || decode('0000000000000000', 'hex');
          WHILE byte_at < presented_length LOOP
            difference := difference
              | (get_byte(expected, byte_at) # get_byte(presented, byte_at))
              | (get_byte(expected, byte_at + 1) # get_byte(presented, byte_at + 1))
              | (get_byte(expected, byte_at + 2) # get_byte(presented, byte_at + 2))
              | (get_byte(expected, byte_at + 3) # get_byte(presented, byte_at + 3))
              | (get_byte(expected, byte_at + 4) # get_byte(presented, byte_at + 4))
              | (get_byte(expected, byte_at + 5) # get_byte(presented, byte_at + 5))
              | (get_byte(expected, byte_at + 6) # get_byte(presented, byte_at + 6))
              | (get_byte(expected, byte_at + 7) # get_byte(presented, byte_at + 7));
            byte_at := byte_at + 8;
          END LOOP;
          matched := matched OR difference = 0;
        END IF;
      END LOOP;
      held := matched;
    END IF;
    IF NOT held THEN
      key_row := row_to_json(k);
      RETURN;
    END IF;
    key_last_used_at := k.last_used_at;
  END IF;
  applied := true;

  -- The distinct counter IDs in key order (byte order, as COLLATE "C" sorts the id column), each
  -- as the index of its last occurrence: the state a counter named twice is written with.
  FOR i IN 1 .. n LOOP
    slot := 1;
    duplicate := false;
    FOR j IN 1 .. coalesce(array_length(lock_order, 1), 0) LOOP
      IF p_rate_ids[lock_order[j]] = p_rate_ids[i] THEN
        lock_order[j] := i;
        duplicate := true;
        EXIT;
      END IF;
      EXIT WHEN p_rate_ids[i] COLLATE "C" < p_rate_ids[lock_order[j]] COLLATE "C";
      slot := slot + 1;
    END LOOP;
    IF NOT duplicate THEN
      lock_order := lock_order[1 : slot - 1] || i || lock_order[slot :];
    END IF;
  END LOOP;

  -- The stored states, locked in key order: the balance ('credits' < 'rate'), then the counters. A
  -- counter row without an instant counts as absent (and is still updated, not inserted).
  IF p_credits_id IS NOT NULL THEN
    IF p_commit THEN
      SELECT u.value, u.at INTO credits_value, credits_at FROM ${usage} u WHERE u.kind = 'credits' AND u.id = p_credits_id FOR UPDATE;
    ELSE
      SELECT u.value, u.at INTO credits_value, credits_at FROM ${usage} u WHERE u.kind = 'credits' AND u.id = p_credits_id;
    END IF;
    credits_found := FOUND;
  END IF;
  FOR j IN 1 .. coalesce(array_length(lock_order, 1), 0) LOOP
    IF p_commit THEN
      SELECT u.value, u.at INTO read_value, read_at FROM ${usage} u WHERE u.kind = 'rate' AND u.id = p_rate_ids[lock_order[j]] FOR UPDATE;
    ELSE
      SELECT u.value, u.at INTO read_value, read_at FROM ${usage} u WHERE u.kind = 'rate' AND u.id = p_rate_ids[lock_order[j]];
    END IF;
    IF FOUND THEN
      FOR i IN 1 .. n LOOP
        IF p_rate_ids[i] = p_rate_ids[lock_order[j]] THEN
          row_found[i] := true;
          row_value[i] := read_value;
          row_at[i] := read_at;
        END IF;
      END LOOP;
    END IF;
  END LOOP;

  -- currentCounter and counterAllows, per counter in request order.
  rate_value := array_fill(NULL::DOUBLE PRECISION, ARRAY[n]);
  rate_at := array_fill(NULL::BIGINT, ARRAY[n]);
  FOR i IN 1 .. n LOOP
    IF p_rate_fixed[i] THEN
      window_start := p_now - p_now % p_rate_windows[i];
      IF row_at[i] IS NULL OR row_at[i] < window_start THEN
        rate_value[i] := 0;
        rate_at[i] := window_start;
      ELSE
        rate_value[i] := row_value[i];
        rate_at[i] := row_at[i];
      END IF;
      passes := passes AND rate_value[i] + p_cost <= p_rate_limits[i];
    ELSE
      IF row_at[i] IS NULL THEN
        rate_value[i] := p_rate_capacities[i];
        rate_at[i] := p_now;
      ELSIF p_now <= row_at[i] THEN
        rate_value[i] := row_value[i];
        rate_at[i] := row_at[i];
      ELSE
        rate_value[i] := least(p_rate_capacities[i], row_value[i] + ((p_now - row_at[i])::DOUBLE PRECISION * p_rate_limits[i]) / p_rate_windows[i]::DOUBLE PRECISION);
        rate_at[i] := p_now;
      END IF;
      passes := passes AND rate_value[i] >= p_cost;
    END IF;
  END LOOP;

  -- currentCredits, and the balance before this request.
  IF p_credits_id IS NOT NULL THEN
    IF NOT credits_found THEN
      balance := p_credits_initial;
      balance_at := p_refill_start;
    ELSIF p_refill_amount IS NOT NULL AND (credits_at IS NULL OR credits_at < p_refill_start) THEN
      balance := p_refill_amount;
      balance_at := p_refill_start;
    ELSE
      balance := credits_value;
      balance_at := credits_at;
    END IF;
    credits_previous := CASE WHEN credits_found THEN credits_value ELSE p_credits_initial END;
    credits_remaining := balance;
  END IF;
  IF NOT passes THEN
    refused := 'rate_limited';
    RETURN;
  END IF;

  -- chargeCounter; then the balance.
  FOR i IN 1 .. n LOOP
    rate_value[i] := CASE WHEN p_rate_fixed[i] THEN rate_value[i] + p_cost ELSE rate_value[i] - p_cost END;
  END LOOP;
  IF p_credits_id IS NOT NULL THEN
    IF balance < p_cost THEN
      refused := 'usage_exceeded';
    ELSE
      credits_remaining := balance - p_cost;
      write_credits := true;
    END IF;
  END IF;
  IF NOT p_commit THEN
    RETURN;
  END IF;

  -- The writes, in the order of the locks: an UPDATE of a row that was read, an INSERT of one that
  -- was absent. counterExpiresAt gives a counter's expires_at.
  IF write_credits THEN
    IF credits_found THEN
      UPDATE ${usage} SET value = credits_remaining, at = balance_at, expires_at = NULL WHERE kind = 'credits' AND id = p_credits_id;
    ELSE
      INSERT INTO ${usage} (kind, id, value, at, expires_at) VALUES ('credits', p_credits_id, credits_remaining, balance_at, NULL);
    END IF;
  END IF;
  FOREACH c IN ARRAY lock_order LOOP
    IF p_rate_fixed[c] THEN
      until_ms := rate_at[c] + p_rate_windows[c];
    ELSE
      until_ms := (rate_at[c]::DOUBLE PRECISION + greatest(1::DOUBLE PRECISION, ceil(((p_rate_capacities[c] - rate_value[c]) * p_rate_windows[c]::DOUBLE PRECISION) / p_rate_limits[c])))::BIGINT;
    END IF;
    IF row_found[c] THEN
      UPDATE ${usage} SET value = rate_value[c], at = rate_at[c], expires_at = until_ms WHERE kind = 'rate' AND id = p_rate_ids[c];
    ELSE
      INSERT INTO ${usage} (kind, id, value, at, expires_at) VALUES ('rate', p_rate_ids[c], rate_value[c], rate_at[c], until_ms);
    END IF;
  END LOOP;
END
$$`
}

/** The usage table's statements. */
function usageStatements(table: string): UsageStatements {
  const usage = `"${table}_usage"`
  const consume = `SELECT ${CONSUME_COLUMNS.join(', ')} FROM "${table}_consume"(${Array.from({ length: 15 }, (_, index) => `$${index + 1}`).join(', ')})`
  const insert = (rows: readonly UsageRow[]) => `INSERT INTO ${usage} (kind, id, value, at, expires_at) VALUES ${tuples(rows.length, 5)}`
  return {
    absentRowsLockGaps: false,
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
    consume: (request, guard) => ({ sql: consume, params: consumeParams(request, guard) }),
  }
}

/** The PostgreSQL statements for `table` (already validated). */
export function postgresDialect(table: string): SqlDialect {
  const quoted = `"${table}"`
  const usage = `"${table}_usage"`
  const audit = `"${table}_audit"`
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
      `ALTER TABLE ${quoted} ADD COLUMN IF NOT EXISTS created_by TEXT, ADD COLUMN IF NOT EXISTS updated_by TEXT, ADD COLUMN IF NOT EXISTS disabled_reason TEXT, ADD COLUMN IF NOT EXISTS disabled_by TEXT`,
      // The audit trail: each entry whole as JSON, and the columns its filters and newest-first order use.
      `CREATE TABLE IF NOT EXISTS ${audit} (
  id VARCHAR(64) COLLATE "C" NOT NULL PRIMARY KEY,
  at BIGINT NOT NULL,
  action VARCHAR(32) COLLATE "C" NOT NULL,
  key_id VARCHAR(256) COLLATE "C",
  owner_id VARCHAR(256) COLLATE "C",
  tenant_id VARCHAR(256) COLLATE "C",
  actor_id VARCHAR(256) COLLATE "C",
  entry_json TEXT NOT NULL
)`,
      `CREATE INDEX IF NOT EXISTS "${table}_audit_at_idx" ON ${audit} (at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_audit_key_idx" ON ${audit} (key_id, at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_audit_tenant_idx" ON ${audit} (tenant_id, at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_audit_owner_idx" ON ${audit} (owner_id, at, id)`,
      `CREATE INDEX IF NOT EXISTS "${table}_audit_actor_idx" ON ${audit} (actor_id, at, id)`,
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
      // consumeUsage and consumeIfCurrent in one round trip; replaced whole on every migrate().
      consumeFunction(table),
    ].map((sql) => ({ sql })),
    insert: `INSERT INTO ${quoted} (${columns}) VALUES (${COLUMNS.map((_, index) => `$${index + 1}`).join(', ')})`,
    select: `SELECT ${columns} FROM ${quoted}`,
    selectById: `SELECT ${columns} FROM ${quoted} WHERE id = $1`,
    // FOR NO KEY UPDATE, not FOR SHARE: see consumeFunction (the consume function takes the same lock).
    selectByIdLocked: `SELECT ${columns} FROM ${quoted} WHERE id = $1 FOR NO KEY UPDATE`,
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
    usage: usageStatements(table),
    audit: auditStatements(audit, { placeholder: (index) => `$${index}`, limit: (value) => value, boundedDelete: 'subselect' }),
    isUniqueViolation: (error) => errorProperty(error, 'code') === '23505',
    // duplicate_column; no statement relies on it (ADD COLUMN IF NOT EXISTS).
    isDuplicateColumn: (error) => errorProperty(error, 'code') === '42701',
    // deadlock_detected, and serialization_failure for databases whose default isolation is SERIALIZABLE.
    isRetryable: (error) => ['40P01', '40001'].includes(errorProperty(error, 'code') as string),
  }
}
