-- keywarden SQL key store: MySQL / MariaDB schema for the default table keywarden_keys, keywarden_keys_locks
-- and keywarden_keys_usage (rate counters and credit balances).
-- The same statements MySqlStore.migrate() runs (a test keeps the two identical); each is idempotent.
-- Run them in order in one session: the upgrade keeps its statement text in a session variable.
-- Resolve it as keywarden/adapters/sql/migrations/mysql.sql: the name 0.1.0 published it under (in adapters/sql/migrations/).
-- For another table name, replace keywarden_keys everywhere and pass the name as the store's `table`.
-- Upgrading from 0.1.0: apply this whole file again (or run migrate()) before 0.2.0 serves requests.
-- MySQL has no ADD COLUMN IF NOT EXISTS (MariaDB has), so the four statements after CREATE TABLE build
-- an ALTER TABLE from information_schema for the columns 0.2.0 reads (policy, has_credits) that are
-- missing, and run it as a prepared statement ('DO 0' when none is). keywarden_keys_usage is created.
-- Existing keys read as policy NULL (the default policy) and has_credits FALSE. 0.1.0 instances keep
-- working on the upgraded table during a rolling deploy: they neither read nor write the new columns,
-- which have defaults.

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

-- Added in 0.2.0: the columns missing from keywarden_keys, added in one ALTER TABLE.
SET @keywarden_upgrade = (
  SELECT IF(COUNT(*) = 6, 'DO 0', CONCAT('ALTER TABLE `keywarden_keys` ', CONCAT_WS(', ',
    IF(SUM(column_name = 'policy') > 0, NULL, 'ADD COLUMN policy VARBINARY(256) NULL'),
    IF(SUM(column_name = 'has_credits') > 0, NULL, 'ADD COLUMN has_credits BOOLEAN NOT NULL DEFAULT FALSE'),
    IF(SUM(column_name = 'created_by') > 0, NULL, 'ADD COLUMN created_by MEDIUMTEXT NULL'),
    IF(SUM(column_name = 'updated_by') > 0, NULL, 'ADD COLUMN updated_by MEDIUMTEXT NULL'),
    IF(SUM(column_name = 'disabled_reason') > 0, NULL, 'ADD COLUMN disabled_reason TEXT NULL'),
    IF(SUM(column_name = 'disabled_by') > 0, NULL, 'ADD COLUMN disabled_by MEDIUMTEXT NULL'))))
  FROM information_schema.columns
  WHERE table_schema = DATABASE() AND table_name = 'keywarden_keys'
    AND column_name IN ('policy', 'has_credits', 'created_by', 'updated_by', 'disabled_reason', 'disabled_by')
);

PREPARE keywarden_upgrade FROM @keywarden_upgrade;

EXECUTE keywarden_upgrade;

DEALLOCATE PREPARE keywarden_upgrade;

CREATE TABLE IF NOT EXISTS `keywarden_keys_locks` (
  owner_id VARBINARY(1024) NOT NULL,
  PRIMARY KEY (owner_id)
) ENGINE=InnoDB;

-- Rate counter states (kind 'rate') and credit balances (kind 'credits'); expires_at is NULL for balances.
CREATE TABLE IF NOT EXISTS `keywarden_keys_usage` (
  kind VARBINARY(8) NOT NULL,
  id VARBINARY(2400) NOT NULL,
  value DOUBLE NOT NULL,
  at BIGINT NULL,
  expires_at BIGINT NULL,
  PRIMARY KEY (kind, id),
  INDEX `keywarden_keys_usage_exp_idx` (expires_at)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC;

-- Added with the audit trail (0.2.0).
CREATE TABLE IF NOT EXISTS `keywarden_keys_audit` (
  id VARBINARY(256) NOT NULL,
  at BIGINT NOT NULL,
  action VARBINARY(32) NOT NULL,
  key_id VARBINARY(1024) NULL,
  owner_id VARBINARY(1024) NULL,
  tenant_id VARBINARY(1024) NULL,
  actor_id VARBINARY(1024) NULL,
  entry_json MEDIUMTEXT NOT NULL,
  PRIMARY KEY (id),
  INDEX `keywarden_keys_audit_at_idx` (at, id),
  INDEX `keywarden_keys_audit_key_idx` (key_id, at, id),
  INDEX `keywarden_keys_audit_tenant_idx` (tenant_id, at, id),
  INDEX `keywarden_keys_audit_owner_idx` (owner_id, at, id),
  INDEX `keywarden_keys_audit_actor_idx` (actor_id, at, id)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
