-- keywarden SQL key store: PostgreSQL (9.6 or later) schema for the default table keywarden_keys and its
-- usage table keywarden_keys_usage (rate counters and credit balances).
-- The same statements PostgresStore.migrate() runs (a test keeps the two identical); each is idempotent.
-- Resolve it as keywarden/adapters/sql/migrations/postgres.sql: the name 0.1.0 published it under (in adapters/sql/migrations/).
-- For another table name, replace keywarden_keys everywhere and pass the name as the store's `table`.
-- Upgrading from 0.1.0: apply this whole file again (or run migrate()) before 0.2.0 serves requests.
-- The ALTER TABLE adds the columns 0.2.0 reads (policy, has_credits) to the 0.1.0 table, and does
-- nothing where they exist; keywarden_keys_usage and the function keywarden_keys_consume are created.
-- Existing keys read as policy NULL (the default policy) and has_credits FALSE. 0.1.0 instances keep
-- working on the upgraded table during a rolling deploy: they neither read nor write the new columns,
-- which have defaults. The function's body is dollar-quoted ($$ ... $$): apply the file with psql or
-- a tool that keeps dollar-quoted text whole, not one that splits at every semicolon.

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

-- Added with the audit trail (0.2.0).
ALTER TABLE "keywarden_keys" ADD COLUMN IF NOT EXISTS created_by TEXT, ADD COLUMN IF NOT EXISTS updated_by TEXT, ADD COLUMN IF NOT EXISTS disabled_reason TEXT, ADD COLUMN IF NOT EXISTS disabled_by TEXT;

-- Added with the audit trail (0.2.0).
CREATE TABLE IF NOT EXISTS "keywarden_keys_audit" (
  id VARCHAR(64) COLLATE "C" NOT NULL PRIMARY KEY,
  at BIGINT NOT NULL,
  action VARCHAR(32) COLLATE "C" NOT NULL,
  key_id VARCHAR(256) COLLATE "C",
  owner_id VARCHAR(256) COLLATE "C",
  tenant_id VARCHAR(256) COLLATE "C",
  actor_id VARCHAR(256) COLLATE "C",
  entry_json TEXT NOT NULL
);

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

-- consumeUsage and consumeIfCurrent in one statement (one round trip): the guard on the key row, the
-- rate and credit arithmetic, and the writes, run on the server. Replaced whole every time this file
-- (or migrate()) runs. It references the two tables by name: rename keywarden_keys in it too.
CREATE OR REPLACE FUNCTION "keywarden_keys_consume"(
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
      SELECT * INTO k FROM "keywarden_keys" WHERE id = p_key_id FOR NO KEY UPDATE;
    ELSE
      SELECT * INTO k FROM "keywarden_keys" WHERE id = p_key_id;
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
      SELECT u.value, u.at INTO credits_value, credits_at FROM "keywarden_keys_usage" u WHERE u.kind = 'credits' AND u.id = p_credits_id FOR UPDATE;
    ELSE
      SELECT u.value, u.at INTO credits_value, credits_at FROM "keywarden_keys_usage" u WHERE u.kind = 'credits' AND u.id = p_credits_id;
    END IF;
    credits_found := FOUND;
  END IF;
  FOR j IN 1 .. coalesce(array_length(lock_order, 1), 0) LOOP
    IF p_commit THEN
      SELECT u.value, u.at INTO read_value, read_at FROM "keywarden_keys_usage" u WHERE u.kind = 'rate' AND u.id = p_rate_ids[lock_order[j]] FOR UPDATE;
    ELSE
      SELECT u.value, u.at INTO read_value, read_at FROM "keywarden_keys_usage" u WHERE u.kind = 'rate' AND u.id = p_rate_ids[lock_order[j]];
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
      UPDATE "keywarden_keys_usage" SET value = credits_remaining, at = balance_at, expires_at = NULL WHERE kind = 'credits' AND id = p_credits_id;
    ELSE
      INSERT INTO "keywarden_keys_usage" (kind, id, value, at, expires_at) VALUES ('credits', p_credits_id, credits_remaining, balance_at, NULL);
    END IF;
  END IF;
  FOREACH c IN ARRAY lock_order LOOP
    IF p_rate_fixed[c] THEN
      until_ms := rate_at[c] + p_rate_windows[c];
    ELSE
      until_ms := (rate_at[c]::DOUBLE PRECISION + greatest(1::DOUBLE PRECISION, ceil(((p_rate_capacities[c] - rate_value[c]) * p_rate_windows[c]::DOUBLE PRECISION) / p_rate_limits[c])))::BIGINT;
    END IF;
    IF row_found[c] THEN
      UPDATE "keywarden_keys_usage" SET value = rate_value[c], at = rate_at[c], expires_at = until_ms WHERE kind = 'rate' AND id = p_rate_ids[c];
    ELSE
      INSERT INTO "keywarden_keys_usage" (kind, id, value, at, expires_at) VALUES ('rate', p_rate_ids[c], rate_value[c], rate_at[c], until_ms);
    END IF;
  END LOOP;
END
$$;
