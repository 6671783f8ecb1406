/**
 * The change context every management call accepts as its last argument, validated at the boundary.
 */
import * as z from 'zod/mini'
import { identifierSchema } from '../validation.js'
import type { Actor, ChangeContext } from './audit-store.js'

const TEXT = /^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f\p{Cs}]*$/u

export const actorSchema = z.strictObject({
  type: z.enum(['user', 'service', 'key', 'system']),
  id: identifierSchema,
  tenantId: z.optional(identifierSchema),
})

/** The context fields, to spread into a call's own schema (rotate's options hold them too). */
export const contextFields = {
  actor: z.optional(actorSchema),
  reason: z.optional(z.string().check(z.maxLength(1000), z.regex(TEXT, 'must not contain control characters other than tab and line breaks'))),
  requestId: z.optional(z.string().check(z.minLength(1), z.maxLength(256), z.regex(TEXT, 'must not contain control characters'))),
}

export const expectedVersionField = {
  expectedVersion: z.optional(z.number().check(z.int(), z.gte(1), z.lte(Number.MAX_SAFE_INTEGER))),
}

/**
 * A change context plus the version the caller last saw: the change is made only if the key still
 * has it, else a `ConflictError` with code `version_conflict` (and nothing changes).
 *
 * @example
 * ```ts
 * import type { VersionedChangeContext } from 'keywarden'
 *
 * const key = await keys.get(keyId)
 * const context: VersionedChangeContext = { actor: { type: 'user', id: 'u_42' }, expectedVersion: key!.version }
 * await keys.update(keyId, { name: 'CI (main)' }, context)
 * ```
 */
export interface VersionedChangeContext extends ChangeContext {
  /** The key's `version` the caller last saw. */
  readonly expectedVersion?: number
}

export const contextSchema = z.strictObject({ ...contextFields })
export const versionedContextSchema = z.strictObject({ ...contextFields, ...expectedVersionField })

/** A context with every field present (`null` for not given), as entries store it. */
export interface ResolvedContext {
  readonly actor: Actor | null
  readonly reason: string | null
  readonly requestId: string | null
}

export function resolveContext(parsed: { actor?: Actor | undefined; reason?: string | undefined; requestId?: string | undefined }): ResolvedContext {
  const actor = parsed.actor === undefined ? null : Object.freeze({ type: parsed.actor.type, id: parsed.actor.id, ...(parsed.actor.tenantId === undefined ? {} : { tenantId: parsed.actor.tenantId }) })
  return Object.freeze({ actor, reason: parsed.reason ?? null, requestId: parsed.requestId ?? null })
}

export const NO_CONTEXT: ResolvedContext = Object.freeze({ actor: null, reason: null, requestId: null })
