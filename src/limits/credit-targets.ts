/**
 * Naming a credit balance from the outside: a key's, an owner's (within a tenant) or a tenant's.
 */
import * as z from 'zod/mini'
import type { StoredKey } from '../store.js'
import { identifierSchema } from '../validation.js'
import type { LimitScope } from './config.js'

/**
 * The balance a credits call reads or changes: `{ keyId }` is the balance that key is charged to
 * (its own, or the owner or tenant pool its policy names); `{ ownerId, tenantId }` an owner's pool
 * within a tenant (`tenantId` omitted or `null`: the owner's keys without a tenant); `{ tenantId }` a
 * tenant's pool.
 *
 * @example
 * ```ts
 * import type { CreditTarget } from 'keywarden'
 *
 * const ofKey: CreditTarget = { keyId }
 * const ofCustomer: CreditTarget = { ownerId: 'u1', tenantId: 't1' }
 * await keys.addCredits(ofCustomer, 5000)
 * ```
 */
export type CreditTarget =
  | {
      /** The key whose balance is meant. */
      readonly keyId: string
    }
  | {
      /** The owner whose shared pool is meant. */
      readonly ownerId: string
      /** The owner's tenant; omitted or `null` for none. */
      readonly tenantId?: string | null
      /** The policy whose credits rule (initial balance, refill) applies; default `limits.defaultPolicy` when it is a name. */
      readonly policy?: string
    }
  | {
      /** The tenant whose shared pool is meant. */
      readonly tenantId: string
      /** The policy whose credits rule (initial balance, refill) applies; default `limits.defaultPolicy` when it is a name. */
      readonly policy?: string
    }

/** The zod schema of a {@link CreditTarget}. */
export const creditTargetSchema = z.union([
  z.strictObject({ keyId: z.string().check(z.minLength(1), z.maxLength(256)) }),
  z.strictObject({ ownerId: identifierSchema, tenantId: z.nullish(identifierSchema), policy: z.optional(z.string()) }),
  z.strictObject({ tenantId: identifierSchema, policy: z.optional(z.string()) }),
])

/** The target naming the pool `scope` of this key. */
export function creditTargetOf(scope: LimitScope, record: Pick<StoredKey, 'id' | 'ownerId' | 'tenantId'>): CreditTarget {
  if (scope === 'tenant') return { tenantId: record.tenantId! }
  if (scope === 'owner') return { ownerId: record.ownerId!, tenantId: record.tenantId }
  return { keyId: record.id }
}
