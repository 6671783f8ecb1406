/**
 * The expiry policy: turns `expiresIn` / `expiresAt` into an instant within the policy maximum.
 */

import { ValidationError } from '../errors.js'

/** The expiry policy in milliseconds; `null` means never / unbounded. */
export interface ExpiryPolicy {
  readonly defaultMs: number | null
  readonly maxMs: number | null
}

/** An expiry request as validated from input: milliseconds from now, an instant, or `null` for never. */
export interface ExpiryRequest {
  readonly expiresIn?: number | null | undefined
  readonly expiresAt?: Date | null | undefined
}

const BEYOND_MAX = 'exceeds the maximum lifetime allowed by the expiry policy'

/**
 * Turns an expiry request into an instant (epoch ms), `null` for never, or `undefined` when the request
 * names no expiry and `useDefault` is off. Requests beyond the policy maximum are rejected, not clamped.
 */
export function resolveExpiry(request: ExpiryRequest, policy: ExpiryPolicy, now: number, useDefault: boolean): number | null | undefined {
  const { expiresIn, expiresAt } = request
  if (expiresIn !== undefined && expiresAt !== undefined) {
    throw new ValidationError([{ path: ['expiresAt'], message: 'give either expiresIn or expiresAt, not both' }])
  }
  if (expiresIn === null || expiresAt === null) {
    const field = expiresIn === null ? 'expiresIn' : 'expiresAt'
    if (policy.maxMs !== null) throw new ValidationError([{ path: [field], message: `cannot be never: ${BEYOND_MAX}` }])
    return null
  }
  if (expiresIn !== undefined) {
    if (expiresIn <= 0) throw new ValidationError([{ path: ['expiresIn'], message: 'must be longer than 0' }])
    if (policy.maxMs !== null && expiresIn > policy.maxMs) throw new ValidationError([{ path: ['expiresIn'], message: BEYOND_MAX }])
    return now + expiresIn
  }
  if (expiresAt !== undefined) {
    const at = expiresAt.getTime()
    if (at <= now) throw new ValidationError([{ path: ['expiresAt'], message: 'must be in the future' }])
    if (policy.maxMs !== null && at - now > policy.maxMs) throw new ValidationError([{ path: ['expiresAt'], message: BEYOND_MAX }])
    return at
  }
  if (!useDefault) return undefined
  return policy.defaultMs === null ? null : now + policy.defaultMs
}
