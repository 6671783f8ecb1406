-- keywarden SQL key store: MySQL / MariaDB schema for the default table keywarden_keys and keywarden_keys_locks.
-- The same statements MySqlStore.migrate() runs (a test keeps the two identical); each is idempotent.
-- Resolve it as keywarden/adapters/sql/migrations/mysql.sql: the name 0.1.0 published it under (in adapters/sql/migrations/).
-- For another table name, replace keywarden_keys everywhere and pass the name as the store's `table`.

CREATE TABLE IF NOT EXISTS `keywarden_keys` (
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
  INDEX `keywarden_keys_owner_idx` (owner_id, created_at, id),
  INDEX `keywarden_keys_tenant_idx` (tenant_id, created_at, id),
  INDEX `keywarden_keys_created_idx` (created_at, id),
  INDEX `keywarden_keys_expires_idx` (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `keywarden_keys_locks` (
  owner_id VARBINARY(1024) NOT NULL,
  PRIMARY KEY (owner_id)
) ENGINE=InnoDB;
