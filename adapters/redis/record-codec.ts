/**
 * How a {@link StoredKey} is kept in Redis: its hash, and the verify snapshot beside it.
 *
 * The hash has four fields:
 *
 * - `fixed`: JSON of the immutable fields, written once by insert, so update keeps the stored values;
 * - `doc`: JSON of the fields update replaces (`policy` and `hasCredits` too: absent in records
 *   written by 0.1.0, read as `null` and `false`);
 * - `version`: the compare-and-set token, a decimal integer the scripts compare as a string;
 * - `lastUsedAt`: written only by touch; absent while `null`.
 *
 * The snapshot (`{ns}:v:<id>`, a string) is the whole record as one JSON document, so a read is one
 * bulk string and one `JSON.parse`, and many reads batch into one `MGET`. It starts with
 * `{"lastUsedAt":<value>,` and the other fields follow in declaration order: Lua splices the first
 * member (touch raises it; update and insert put the hash's value there) and never parses the rest.
 * Every script that changes the hash rewrites the snapshot in the same step.
 *
 * JSON is built and read here, never by Lua (whose cjson rounds numbers to 14 digits), so every
 * number, `Number.MAX_SAFE_INTEGER` included, round-trips exactly.
 */
import type { StoredKey } from '../../src/store.js'

type Place = 'fixed' | 'doc' | 'own'

// In StoredKey's declaration order. `satisfies` makes a new StoredKey field a compile error here
// until it is given a place.
const PLACES = {
  id: 'fixed',
  name: 'doc',
  description: 'doc',
  ownerId: 'fixed',
  tenantId: 'fixed',
  environment: 'fixed',
  type: 'doc',
  scopes: 'doc',
  roles: 'doc',
  groups: 'doc',
  metadata: 'doc',
  start: 'doc',
  hash: 'doc',
  previousHash: 'doc',
  previousHashExpiresAt: 'doc',
  createdAt: 'fixed',
  updatedAt: 'doc',
  expiresAt: 'doc',
  lastUsedAt: 'own',
  enabled: 'doc',
  revokedAt: 'doc',
  expiryNoticeFor: 'doc',
  version: 'own',
  policy: 'doc',
  hasCredits: 'doc',
  createdBy: 'doc',
  updatedBy: 'doc',
  disabledReason: 'doc',
  disabledBy: 'doc',
} as const satisfies Record<keyof StoredKey, Place>

const FIELDS = Object.keys(PLACES) as (keyof StoredKey)[]

function pick(record: StoredKey, place: Place): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const field of FIELDS) if (PLACES[field] === place) out[field] = record[field]
  return out
}

/** The hash fields read back, in this order, by get and list. */
export const READ_FIELDS = ['fixed', 'doc', 'version', 'lastUsedAt'] as const

/** The immutable fields as stored; byte-equal for equal values, so scripts compare it as a string. */
export function encodeFixed(record: StoredKey): string {
  return JSON.stringify(pick(record, 'fixed'))
}

export function encodeDoc(record: StoredKey): string {
  return JSON.stringify(pick(record, 'doc'))
}

/** An instant or counter as a string Redis keeps verbatim; `Number(text)` gives the same number back. */
export function encodeNumber(value: number): string {
  return String(value)
}

/** The immutable fields of a stored `fixed` value. */
export function decodeFixed(fixed: string): Pick<StoredKey, 'id' | 'ownerId' | 'tenantId' | 'environment' | 'createdAt'> {
  return JSON.parse(fixed) as Pick<StoredKey, 'id' | 'ownerId' | 'tenantId' | 'environment' | 'createdAt'>
}

/** The fields kept in `doc`, as a type, so the decoder below cannot miss one. */
type DocFields = Pick<StoredKey, { [F in keyof typeof PLACES]: (typeof PLACES)[F] extends 'doc' ? F : never }[keyof typeof PLACES]>

/**
 * The record from the values of {@link READ_FIELDS}, or `null` when the hash does not exist.
 * Every call builds new objects, so callers can never change what is stored.
 */
export function decodeRecord(values: readonly (string | null)[]): StoredKey | null {
  const [fixedText, docText, version, lastUsedAt] = values
  if (fixedText == null || docText == null || version == null) return null
  const fixed = decodeFixed(fixedText)
  const doc = JSON.parse(docText) as DocFields
  // One literal in declaration order: verify's path, and V8 builds it with one hidden class. A keyed
  // loop or a spread of the two parsed objects costs several times more.
  return {
    id: fixed.id,
    name: doc.name,
    description: doc.description,
    ownerId: fixed.ownerId,
    tenantId: fixed.tenantId,
    environment: fixed.environment,
    type: doc.type,
    scopes: doc.scopes,
    roles: doc.roles,
    groups: doc.groups,
    metadata: doc.metadata,
    start: doc.start,
    hash: doc.hash,
    previousHash: doc.previousHash,
    previousHashExpiresAt: doc.previousHashExpiresAt,
    createdAt: fixed.createdAt,
    updatedAt: doc.updatedAt,
    expiresAt: doc.expiresAt,
    lastUsedAt: lastUsedAt == null ? null : Number(lastUsedAt),
    enabled: doc.enabled,
    revokedAt: doc.revokedAt,
    expiryNoticeFor: doc.expiryNoticeFor,
    version: Number(version),
    // Absent from records written by 0.1.0: the defaults, so they need no data migration.
    policy: doc.policy ?? OPTIONAL_DEFAULTS.policy,
    hasCredits: doc.hasCredits ?? OPTIONAL_DEFAULTS.hasCredits,
    createdBy: doc.createdBy ?? OPTIONAL_DEFAULTS.createdBy,
    updatedBy: doc.updatedBy ?? OPTIONAL_DEFAULTS.updatedBy,
    disabledReason: doc.disabledReason ?? OPTIONAL_DEFAULTS.disabledReason,
    disabledBy: doc.disabledBy ?? OPTIONAL_DEFAULTS.disabledBy,
  }
}

/** How every snapshot starts; Lua checks and splices this member (snapshot-lua.ts). */
export const SNAPSHOT_HEAD = '{"lastUsedAt":'

/**
 * The snapshot without its first member: `"id":…}`, every field but `lastUsedAt` in declaration order.
 * The script that writes it puts `{"lastUsedAt":<the hash's value>,` in front.
 */
export function encodeSnapshotTail(record: StoredKey): string {
  const out: Record<string, unknown> = {}
  for (const field of FIELDS) {
    if (field === 'lastUsedAt') continue
    const value = record[field]
    out[field] = value === undefined && field in OPTIONAL_DEFAULTS ? OPTIONAL_DEFAULTS[field as keyof typeof OPTIONAL_DEFAULTS] : value
  }
  return JSON.stringify(out).slice(1)
}

/**
 * The optional fields' values when a record leaves them out (written by 0.1.0, or given by a caller
 * written against its contract): {@link decodeRecord} reads a hash with them, and the snapshot is
 * written with them, so its read needs none.
 */
const OPTIONAL_DEFAULTS = {
  policy: null,
  hasCredits: false,
  createdBy: null,
  updatedBy: null,
  disabledReason: null,
  disabledBy: null,
} as const satisfies { [F in keyof StoredKey as undefined extends StoredKey[F] ? F : never]-?: StoredKey[F] }

/** A stored snapshot as a record: one `JSON.parse`, a new object on every call. */
export function decodeSnapshot(text: string): StoredKey {
  if (!text.startsWith(SNAPSHOT_HEAD)) throw new Error('Unexpected Redis reply: expected a keywarden verify snapshot')
  return JSON.parse(text) as StoredKey
}
