-- keywarden SQL key store: SQLite schema for the default table keywarden_keys and its usage table
-- keywarden_keys_usage (rate counters and credit balances).
-- The same statements SqliteStore.migrate() runs (a test keeps the two identical). Each is idempotent
-- except the two ALTER TABLE ... ADD COLUMN (see below).
-- Resolve it as keywarden/adapters/sql/migrations/sqlite.sql: the name 0.1.0 published it under (in adapters/sql/migrations/).
-- For another table name, replace keywarden_keys everywhere and pass the name as the store's `table`.
-- Upgrading from 0.1.0: apply this whole file again (or run migrate()) before 0.2.0 serves requests.
-- The ALTER TABLE statements add the columns 0.2.0 reads (policy, has_credits); keywarden_keys_usage
-- is created. Existing keys read as policy NULL (the default policy) and has_credits 0. 0.1.0
-- instances keep working on the upgraded table: they neither read nor write the new columns.
-- SQLite has no ADD COLUMN IF NOT EXISTS: on a database that already has a column, its ALTER TABLE
-- fails with "duplicate column name: ...". That error means the column is there; migrate() ignores
-- exactly that error for exactly these statements. With a migration tool, apply this file once per
-- database, or run the remaining statements after such an error (sqlite3 without -bail does).

CREATE TABLE IF NOT EXISTS "keywarden_keys" (
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
);

-- Added in 0.2.0; each fails with "duplicate column name" once applied (see above).
ALTER TABLE "keywarden_keys" ADD COLUMN policy TEXT;

ALTER TABLE "keywarden_keys" ADD COLUMN has_credits INTEGER NOT NULL DEFAULT 0;

-- Added with the audit trail (0.2.0).
ALTER TABLE "keywarden_keys" ADD COLUMN created_by TEXT;

ALTER TABLE "keywarden_keys" ADD COLUMN updated_by TEXT;

ALTER TABLE "keywarden_keys" ADD COLUMN disabled_reason TEXT;

-- Added with the audit trail (0.2.0).
ALTER TABLE "keywarden_keys" ADD COLUMN disabled_by TEXT;

CREATE INDEX IF NOT EXISTS "keywarden_keys_owner_idx" ON "keywarden_keys" (owner_id, created_at, id);

CREATE INDEX IF NOT EXISTS "keywarden_keys_tenant_idx" ON "keywarden_keys" (tenant_id, created_at, id);

CREATE INDEX IF NOT EXISTS "keywarden_keys_created_idx" ON "keywarden_keys" (created_at, id);

CREATE INDEX IF NOT EXISTS "keywarden_keys_expires_idx" ON "keywarden_keys" (expires_at);

-- Rate counter states (kind 'rate') and credit balances (kind 'credits'); expires_at is NULL for balances.
CREATE TABLE IF NOT EXISTS "keywarden_keys_usage" (
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  value REAL NOT NULL,
  at INTEGER,
  expires_at INTEGER,
  PRIMARY KEY (kind, id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS "keywarden_keys_usage_exp_idx" ON "keywarden_keys_usage" (expires_at);

-- Added with the audit trail (0.2.0).
CREATE TABLE IF NOT EXISTS "keywarden_keys_audit" (
  id TEXT NOT NULL PRIMARY KEY,
  at INTEGER NOT NULL,
  action TEXT NOT NULL,
  key_id TEXT,
  owner_id TEXT,
  tenant_id TEXT,
  actor_id TEXT,
  entry_json TEXT NOT NULL
) WITHOUT ROWID;

-- Added with the audit trail (0.2.0).
CREATE INDEX IF NOT EXISTS "keywarden_keys_audit_at_idx" ON "keywarden_keys_audit" (at, id);

-- Added with the audit trail (0.2.0).
CREATE INDEX IF NOT EXISTS "keywarden_keys_audit_key_idx" ON "keywarden_keys_audit" (key_id, at, id);

-- Added with the audit trail (0.2.0).
CREATE INDEX IF NOT EXISTS "keywarden_keys_audit_tenant_idx" ON "keywarden_keys_audit" (tenant_id, at, id);

-- Added with the audit trail (0.2.0).
CREATE INDEX IF NOT EXISTS "keywarden_keys_audit_owner_idx" ON "keywarden_keys_audit" (owner_id, at, id);

-- Added with the audit trail (0.2.0).
CREATE INDEX IF NOT EXISTS "keywarden_keys_audit_actor_idx" ON "keywarden_keys_audit" (actor_id, at, id);
