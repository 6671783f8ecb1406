/**
 * The `changes` of an audit entry and an event: the fields a write really changed, with their values
 * before and after, as JSON. Only fields people manage are listed; secrets and hashes never are.
 */
import type { JsonValue, StoredKey } from '../store.js'
import type { ChangeDetails } from '../events.js'
import type { AuditAction, AuditChanges, FieldChange } from './audit-store.js'
import type { ResolvedContext } from './context.js'

/** The key fields an audit entry may list, in the order they are listed. */
const AUDITED_FIELDS = [
  'name',
  'description',
  'environment',
  'type',
  'scopes',
  'roles',
  'groups',
  'metadata',
  'expiresAt',
  'policy',
  'enabled',
  'disabledReason',
  'disabledBy',
  'revokedAt',
  'start',
  'previousHashExpiresAt',
] as const satisfies readonly (keyof StoredKey)[]

type AuditedField = (typeof AUDITED_FIELDS)[number]

/** The name a field has in `changes`: the public one where the stored one would mislead. */
const PUBLIC_NAMES: Partial<Record<AuditedField, string>> = { previousHashExpiresAt: 'previousSecretValidUntil' }

const INSTANTS = new Set<AuditedField>(['expiresAt', 'revokedAt', 'previousHashExpiresAt'])

function jsonOf(field: AuditedField, record: Partial<StoredKey> | null): JsonValue {
  const value = record?.[field] ?? null
  if (value === null) return null
  if (INSTANTS.has(field)) return new Date(value as number).toISOString()
  return value as JsonValue
}

function isEmpty(value: JsonValue): boolean {
  if (value === null) return true
  if (Array.isArray(value)) return value.length === 0
  return typeof value === 'object' && Object.keys(value).length === 0
}

/**
 * What changed between two versions of a key. For `created` (`before` is `null`) every field that is
 * set is listed, from `null`; `enabled` and `start` are left out there (every new key is enabled and
 * has a start). A `deleted` key lists nothing.
 */
export function changesBetween(action: AuditAction, before: StoredKey | null, after: StoredKey | null): AuditChanges {
  const changes: Record<string, FieldChange> = {}
  if (action === 'deleted' || after === null) return changes
  for (const field of AUDITED_FIELDS) {
    const to = jsonOf(field, after)
    if (before === null) {
      if (field === 'enabled' || field === 'start' || isEmpty(to)) continue
      changes[PUBLIC_NAMES[field] ?? field] = { from: null, to }
      continue
    }
    const from = jsonOf(field, before)
    if (JSON.stringify(from) !== JSON.stringify(to)) changes[PUBLIC_NAMES[field] ?? field] = { from, to }
  }
  return changes
}

/** What a management event says about its change: who, why, and the same `changes` its entry holds. */
export function changeDetails(context: ResolvedContext, changes: AuditChanges): ChangeDetails {
  return { actor: context.actor, reason: context.reason, requestId: context.requestId, changes }
}
