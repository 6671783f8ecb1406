-- keywarden SQL key store: PostgreSQL (9.6 or later) schema for the default table keywarden_keys and its
-- usage table keywarden_keys_usage (rate counters and credit balances).
-- The same statements PostgresStore.migrate() runs (a test keeps the two identical); each is idempotent.
-- Resolve it as keywarden/adapters/sql/migrations/postgres.sql: the name 0.1.0 published it under (in adapters/sql/migrations/).
-- For another table name, replace keywarden_keys everywhere and pass the name as the store's `table`.
--
-- Upgrading from 0.1.0: apply this whole file again (or run migrate()) before 0.2.0 serves requests.
-- The ALTER TABLE adds the columns 0.2.0 reads (policy, has_credits) to the 0.1.0 table, and does
-- nothing where they exist; keywarden_keys_usage is created. Existing keys read as policy NULL (the
-- default policy) and has_credits FALSE. 0.1.0 instances keep working on the upgraded table during a
-- rolling deploy: they neither read nor write the new columns, which have defaults.

CREATE TABLE IF NOT EXISTS "keywarden_keys" (
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
);

-- Added in 0.2.0.
ALTER TABLE "keywarden_keys" ADD COLUMN IF NOT EXISTS policy VARCHAR(64) COLLATE "C", ADD COLUMN IF NOT EXISTS has_credits BOOLEAN NOT NULL DEFAULT FALSE;

CREATE INDEX IF NOT EXISTS "keywarden_keys_owner_idx" ON "keywarden_keys" (owner_id, created_at, id);

CREATE INDEX IF NOT EXISTS "keywarden_keys_tenant_idx" ON "keywarden_keys" (tenant_id, created_at, id);

CREATE INDEX IF NOT EXISTS "keywarden_keys_created_idx" ON "keywarden_keys" (created_at, id);

CREATE INDEX IF NOT EXISTS "keywarden_keys_expires_idx" ON "keywarden_keys" (expires_at);

-- Rate counter states (kind 'rate') and credit balances (kind 'credits'); expires_at is NULL for balances.
CREATE TABLE IF NOT EXISTS "keywarden_keys_usage" (
  kind VARCHAR(8) COLLATE "C" NOT NULL,
  id VARCHAR(600) COLLATE "C" NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  at BIGINT,
  expires_at BIGINT,
  PRIMARY KEY (kind, id)
);

CREATE INDEX IF NOT EXISTS "keywarden_keys_usage_exp_idx" ON "keywarden_keys_usage" (expires_at);
