/**
 * Sorted-set scores as the scripts and commands send them: the expiry index is scored by `expiresAt`.
 */
import type { StoredKey } from '../../src/store.js'

/** A score argument: Redis spells infinities `+inf` and `-inf`. */
export function scoreArgument(value: number): string {
  if (value === Infinity) return '+inf'
  if (value === -Infinity) return '-inf'
  return String(value)
}

/** The expiry-index score, or '' when the record is not in that index (it never expires, or is revoked). */
export function expiryScore(record: StoredKey): string {
  return record.revokedAt === null && record.expiresAt !== null ? scoreArgument(record.expiresAt) : ''
}
