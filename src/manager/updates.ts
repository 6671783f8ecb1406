/**
 * What an update changes: the new record built from a validated patch (a new expiry measured from
 * now, within the policy), and the fields whose values really differ, which the `updated` event lists.
 */
import { KeyRevokedError } from '../errors.js'
import { resolveExpiry, type ExpiryPolicy, type ExpiryRequest } from '../policy/expiry.js'
import type { StoredKey } from '../store.js'
import type { Change } from './compare-and-set.js'

/** The fields an update may change, in the order the `updated` event lists them. */
const UPDATABLE_FIELDS = ['name', 'description', 'type', 'scopes', 'roles', 'groups', 'metadata', 'expiresAt', 'policy'] as const

/** A validated patch: replacement field values and an expiry request. */
export type Patch = Partial<Pick<StoredKey, Exclude<(typeof UPDATABLE_FIELDS)[number], 'expiresAt'>>> & ExpiryRequest

/** One update in the making: the change to apply, and the fields it changed once applied. */
export interface UpdatePlan {
  readonly change: Change
  /** The fields whose values the applied change altered; empty for a no-op. */
  changes(): readonly string[]
}

/** The plan for `patch` on key `id`. Setting what is already there is no change: no write, no event. */
export function planUpdate(id: string, patch: Patch, expiry: ExpiryPolicy): UpdatePlan {
  const { expiresIn, expiresAt, ...fields } = patch
  let changes: string[] = []
  const change: Change = (current, now) => {
    if (current.revokedAt !== null) throw new KeyRevokedError(id)
    const newExpiry = resolveExpiry({ expiresIn, expiresAt }, expiry, now, false)
    const next: StoredKey = { ...current, ...fields, ...(newExpiry === undefined ? {} : { expiresAt: newExpiry }) }
    // `?? null`: a record from 0.1.0 (or a custom store) may lack the newer optional fields.
    changes = UPDATABLE_FIELDS.filter((field) => JSON.stringify(current[field] ?? null) !== JSON.stringify(next[field] ?? null))
    return changes.length === 0 ? current : next
  }
  return { change, changes: () => changes }
}
