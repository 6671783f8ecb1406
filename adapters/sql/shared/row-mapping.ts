/**
 * Row <-> record mapping for every SQL store: a row read back as a StoredKey, and a StoredKey as the
 * parameters of the dialects' `insert` and `update` (in the order of shared/columns.ts).
 */
import type { StoredKey } from '../../../src/store.js'
import { COLUMNS, MUTABLE_COLUMNS, type Column } from './columns.js'
import type { SqlRow, SqlValue } from './seams.js'

const decoder = new TextDecoder('utf-8', { fatal: true })

// Drivers return text as strings, binary columns (MySQL VARBINARY) as Buffers, integers as numbers,
// bigints or strings (pg's BIGINT), booleans as booleans or 0/1. These read every form.
/** A text column, from a string or UTF-8 bytes. */
export function readText(value: unknown): string {
  if (typeof value === 'string') return value
  if (value instanceof Uint8Array) return decoder.decode(value)
  throw new TypeError(`Expected a text column, got ${typeof value}`)
}

function readNullableText(value: unknown): string | null {
  return value === null || value === undefined ? null : readText(value)
}

function readInteger(value: unknown): number {
  const number = typeof value === 'number' ? value : typeof value === 'bigint' || typeof value === 'string' ? Number(value) : NaN
  if (!Number.isSafeInteger(number)) throw new TypeError('Expected an integer column')
  return number
}

/** An integer column that may be NULL. */
export function readNullableInteger(value: unknown): number | null {
  return value === null || value === undefined ? null : readInteger(value)
}

/** A floating-point column (DOUBLE PRECISION, DOUBLE, REAL): a finite number; pg and mysql2 may hand over strings. */
export function readNumber(value: unknown): number {
  const number = typeof value === 'number' ? value : typeof value === 'bigint' || typeof value === 'string' ? Number(value) : NaN
  if (!Number.isFinite(number)) throw new TypeError('Expected a number column')
  return number
}

function readBoolean(value: unknown): boolean {
  return value === true || (value !== false && readInteger(value) === 1)
}

function readJson<T>(value: unknown): T {
  const text = readText(value)
  // Most keys have no roles, groups or metadata: JSON.parse costs ~100 ns even for these, a literal ~10.
  if (text === '[]') return [] as T
  if (text === '{}') return {} as T
  return JSON.parse(text) as T
}

/** The `n` column of a `COUNT(*) AS n` result (0 when there is no row). */
export function readCount(rows: readonly SqlRow[]): number {
  return readInteger(rows[0]?.['n'] ?? 0)
}

/** Each column's position in {@link COLUMNS}: the order every dialect's SELECT lists them in. */
const AT = Object.fromEntries(COLUMNS.map((column, index) => [column, index])) as Record<Column, number>

/** The record a row holds. */
export function rowToRecord(row: SqlRow): StoredKey {
  return valuesToRecord(COLUMNS.map((column) => row[column]))
}

/**
 * The record a row holds, given as its column values in {@link COLUMNS} order: what better-sqlite3
 * returns in raw mode, which skips building an object keyed by column name for every row.
 */
export function valuesToRecord(values: readonly unknown[]): StoredKey {
  return {
    id: readText(values[AT.id]),
    name: readText(values[AT.name]),
    description: readNullableText(values[AT.description]),
    ownerId: readNullableText(values[AT.owner_id]),
    tenantId: readNullableText(values[AT.tenant_id]),
    environment: readText(values[AT.environment]),
    type: readNullableText(values[AT.key_type]),
    scopes: readJson(values[AT.scopes_json]),
    roles: readJson(values[AT.roles_json]),
    groups: readJson(values[AT.groups_json]),
    metadata: readJson(values[AT.metadata_json]),
    start: readText(values[AT.start]),
    hash: readText(values[AT.hash]),
    previousHash: readNullableText(values[AT.previous_hash]),
    previousHashExpiresAt: readNullableInteger(values[AT.previous_hash_expires_at]),
    createdAt: readInteger(values[AT.created_at]),
    updatedAt: readInteger(values[AT.updated_at]),
    expiresAt: readNullableInteger(values[AT.expires_at]),
    lastUsedAt: readNullableInteger(values[AT.last_used_at]),
    enabled: readBoolean(values[AT.enabled]),
    revokedAt: readNullableInteger(values[AT.revoked_at]),
    expiryNoticeFor: readNullableInteger(values[AT.expiry_notice_for]),
    version: readInteger(values[AT.version]),
    // NULL or absent (a row written before the columns existed): the default policy, no own balance.
    policy: readNullableText(values[AT.policy]),
    hasCredits: values[AT.has_credits] === null || values[AT.has_credits] === undefined ? false : readBoolean(values[AT.has_credits]),
    createdBy: readNullableJson(values[AT.created_by]),
    updatedBy: readNullableJson(values[AT.updated_by]),
    disabledReason: readNullableText(values[AT.disabled_reason]),
    disabledBy: readNullableJson(values[AT.disabled_by]),
  }
}

function readNullableJson<T>(value: unknown): T | null {
  return value === null || value === undefined ? null : readJson<T>(value)
}

function jsonOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value)
}

/** Every column's value for `record`, keyed by column name; `boolean` binds `enabled` and `has_credits` as the dialect wants. */
function columnValues(record: StoredKey, boolean: (value: boolean) => SqlValue): Record<Column, SqlValue> {
  return {
    id: record.id,
    name: record.name,
    description: record.description,
    owner_id: record.ownerId,
    tenant_id: record.tenantId,
    environment: record.environment,
    key_type: record.type,
    scopes_json: JSON.stringify(record.scopes),
    roles_json: JSON.stringify(record.roles),
    groups_json: JSON.stringify(record.groups),
    metadata_json: JSON.stringify(record.metadata),
    start: record.start,
    hash: record.hash,
    previous_hash: record.previousHash,
    previous_hash_expires_at: record.previousHashExpiresAt,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    expires_at: record.expiresAt,
    last_used_at: record.lastUsedAt,
    enabled: boolean(record.enabled),
    revoked_at: record.revokedAt,
    expiry_notice_for: record.expiryNoticeFor,
    version: record.version,
    policy: record.policy ?? null,
    has_credits: boolean(record.hasCredits ?? false),
    created_by: jsonOrNull(record.createdBy),
    updated_by: jsonOrNull(record.updatedBy),
    disabled_reason: record.disabledReason ?? null,
    disabled_by: jsonOrNull(record.disabledBy),
  }
}

/** The parameters of the dialects' `insert`: every column, in {@link COLUMNS} order. */
export function insertParams(record: StoredKey, boolean: (value: boolean) => SqlValue): SqlValue[] {
  const values = columnValues(record, boolean)
  return COLUMNS.map((column) => values[column])
}

/** The parameters of the dialects' `update`: the mutable columns, the new version, then the `WHERE id, version`. */
export function updateParams(record: StoredKey, expectedVersion: number, boolean: (value: boolean) => SqlValue): SqlValue[] {
  const values = columnValues(record, boolean)
  return [...MUTABLE_COLUMNS.map((column) => values[column]), record.version, record.id, expectedVersion]
}
