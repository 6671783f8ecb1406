/**
 * Record → public `ApiKey`: the one place that decides what of a stored key leaves the KeyManager
 * (never the hash), and which last use it shows (a buffered use not yet written wins).
 */
import type { StoredKey } from '../store.js'
import type { ApiKey } from '../types.js'
import type { UsageBuffer } from '../usage.js'

function toDate(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms)
}

/** Copies only the public fields: the hash never leaves the KeyManager. */
export function toApiKey(record: StoredKey, lastUsedAt: number | null): ApiKey {
  return Object.freeze({
    id: record.id,
    name: record.name,
    description: record.description,
    ownerId: record.ownerId,
    tenantId: record.tenantId,
    environment: record.environment,
    type: record.type,
    scopes: record.scopes,
    roles: record.roles,
    groups: record.groups,
    metadata: record.metadata,
    start: record.start,
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
    expiresAt: toDate(record.expiresAt),
    lastUsedAt: toDate(lastUsedAt),
    enabled: record.enabled,
    revokedAt: toDate(record.revokedAt),
    // Present only when set, so a key without a policy reads exactly as it did in 0.1.0.
    ...(record.policy == null ? {} : { policy: record.policy }),
    createdBy: record.createdBy ?? null,
    updatedBy: record.updatedBy ?? null,
    version: record.version,
    disabledReason: record.disabledReason ?? null,
    disabledBy: record.disabledBy ?? null,
  })
}

/** The last use known to this process: the stored one, or a newer one still in the write-behind buffer. */
export function knownLastUse(record: StoredKey, usage: UsageBuffer): number | null {
  const pending = usage.pendingFor(record.id)
  return pending !== undefined && (record.lastUsedAt === null || pending > record.lastUsedAt) ? pending : record.lastUsedAt
}

/** The public record, showing buffered uses that are not written yet. */
export function publicKey(record: StoredKey, usage: UsageBuffer): ApiKey {
  return toApiKey(record, knownLastUse(record, usage))
}
