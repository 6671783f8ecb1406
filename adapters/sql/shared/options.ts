/**
 * Checks of what every SQL store is constructed with: the table name and the client object.
 */
import { ConfigError } from '../../../src/errors.js'

/**
 * The table used when none is configured: `keywarden_keys`, with its usage table `keywarden_keys_usage`
 * (MySQL also uses `keywarden_keys_locks`).
 *
 * @example
 * ```ts
 * import { DEFAULT_TABLE } from 'keywarden/adapters/sql'
 *
 * await pool.query(`SELECT count(*) FROM ${DEFAULT_TABLE}`)
 * ```
 */
export const DEFAULT_TABLE = 'keywarden_keys'

// Leaves room for the longest derived name (`<table>_usage_exp_idx`; also `<table>_expires_idx`,
// `<table>_consume`, `<table>_locks`, `<table>_usage`) within the 63-byte (PostgreSQL) and
// 64-character (MySQL) identifier limits.
const TABLE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/

/** Checks a configured table name; only identifier characters, so it can be quoted safely in every dialect. */
export function resolveTable(table: unknown): string {
  if (table === undefined) return DEFAULT_TABLE
  if (typeof table !== 'string' || !TABLE_PATTERN.test(table)) {
    throw new ConfigError([
      { path: ['table'], message: 'must be 1-48 letters, digits or underscores, not starting with a digit' },
    ])
  }
  return table
}

/** Throws the ConfigError for a client object that is not what a store expects. */
export function invalidClient(option: string, message: string): never {
  throw new ConfigError([{ path: [option], message }])
}
