/**
 * The per-owner quota of a create: which limit applies, counted per owner within its tenant.
 */
import { ConfigError } from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import type { QuotaCheck } from '../store.js'
import type { OwnerContext } from '../types.js'

/**
 * The quota the store must enforce for a new key, or `null` when the owner is unlimited. A key
 * without an owner is never counted.
 *
 * @throws {@link ConfigError} when a function-valued `maxKeysPerOwner` returns something else than a
 *   non-negative integer or `Infinity`.
 */
export function quotaFor(
  maxKeysPerOwner: ResolvedOptions['maxKeysPerOwner'],
  key: { readonly ownerId: string | null; readonly tenantId: string | null; readonly environment: string },
  owner: OwnerContext | undefined,
): QuotaCheck | null {
  const { ownerId, tenantId, environment } = key
  if (ownerId === null) return null
  const limit = maxKeysPerOwner({ id: ownerId, ...owner }, { ownerId, tenantId, environment })
  if (limit === Infinity) return null
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new ConfigError([{ path: ['maxKeysPerOwner'], message: 'returned something other than a non-negative integer or Infinity' }])
  }
  return { ownerId, tenantId, limit }
}
