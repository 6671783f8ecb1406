/**
 * The columns of the keys table, in the order every dialect's `INSERT` and `UPDATE` bind them.
 */

/** The table's columns, in the order of the dialects' `insert`. */
export const COLUMNS = [
  'id',
  'name',
  'description',
  'owner_id',
  'tenant_id',
  'environment',
  'key_type',
  'scopes_json',
  'roles_json',
  'groups_json',
  'metadata_json',
  'start',
  'hash',
  'previous_hash',
  'previous_hash_expires_at',
  'created_at',
  'updated_at',
  'expires_at',
  'last_used_at',
  'enabled',
  'revoked_at',
  'expiry_notice_for',
  'version',
  // Added after 0.1.0 (migrate() adds them to older tables): last, so 0.1.0's column order stays a prefix.
  'policy',
  'has_credits',
  // Added with the audit trail: who created and last changed the key, why and by whom it is disabled.
  'created_by',
  'updated_by',
  'disabled_reason',
  'disabled_by',
] as const

/** A column of the keys table. */
export type Column = (typeof COLUMNS)[number]

/**
 * The columns an update writes, in the order of the dialects' `update`. Left out on purpose: the
 * immutable `owner_id`, `tenant_id`, `environment` and `created_at`, and `last_used_at`, which only
 * `touch` writes (so a management update never undoes a concurrent touch).
 */
export const MUTABLE_COLUMNS = [
  'name',
  'description',
  'key_type',
  'scopes_json',
  'roles_json',
  'groups_json',
  'metadata_json',
  'start',
  'hash',
  'previous_hash',
  'previous_hash_expires_at',
  'updated_at',
  'expires_at',
  'enabled',
  'revoked_at',
  'expiry_notice_for',
  'policy',
  'has_credits',
  'created_by',
  'updated_by',
  'disabled_reason',
  'disabled_by',
] as const satisfies readonly Column[]
