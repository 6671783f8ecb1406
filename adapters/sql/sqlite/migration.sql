-- keywarden SQL key store: SQLite schema for the default table keywarden_keys.
-- The same statements SqliteStore.migrate() runs (a test keeps the two identical); each is idempotent.
-- Resolve it as keywarden/adapters/sql/migrations/sqlite.sql: the name 0.1.0 published it under (in adapters/sql/migrations/).
-- For another table name, replace keywarden_keys everywhere and pass the name as the store's `table`.

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

CREATE INDEX IF NOT EXISTS "keywarden_keys_owner_idx" ON "keywarden_keys" (owner_id, created_at, id);

CREATE INDEX IF NOT EXISTS "keywarden_keys_tenant_idx" ON "keywarden_keys" (tenant_id, created_at, id);

CREATE INDEX IF NOT EXISTS "keywarden_keys_created_idx" ON "keywarden_keys" (created_at, id);

CREATE INDEX IF NOT EXISTS "keywarden_keys_expires_idx" ON "keywarden_keys" (expires_at);
