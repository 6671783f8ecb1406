/**
 * The zod schemas of one KeyManager's method inputs (create, update, list, expiring, rotate).
 */

import * as z from 'zod/mini'
import { contextFields, contextSchema, expectedVersionField, versionedContextSchema } from './audit/context.js'
import type { ResolvedLimits } from './limits/config.js'
import type { ResolvedOptions } from './options.js'
import {
  dateSchema,
  durationSchema,
  identifierSchema,
  idempotencyKeySchema,
  metadataSchema,
  roleNameSchema,
  scopeListSchema,
  typeSchema,
} from './validation.js'

/** No unpaired surrogate: UTF-8 drivers would store U+FFFD instead, silently changing the text. */
const WELL_FORMED = /^[^\p{Cs}]*$/u

const nameSchema = z
  .string()
  .check(
    z.minLength(1),
    z.maxLength(200),
    z.regex(/\S/, 'must not be blank'),
    z.regex(/^[^\p{Cc}]*$/u, 'must not contain control characters'),
    z.regex(WELL_FORMED, 'must not contain unpaired surrogate characters'),
  )

const descriptionSchema = z
  .string()
  .check(
    z.maxLength(1000),
    z.regex(/^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$/, 'must not contain control characters other than tab and line breaks'),
    z.regex(WELL_FORMED, 'must not contain unpaired surrogate characters'),
  )

/** A list refinement: no item appears twice. */
function unique(what: string) {
  return z.refine<string[]>((list) => new Set(list).size === list.length, `must not repeat a ${what}`)
}

function uniqueList<T extends z.ZodMiniType<string>>(item: T, what: string) {
  return z.array(item).check(z.maxLength(256), unique(what))
}

/** The zod schemas for one KeyManager's inputs (they depend on its environments, roles and groups). */
export function inputSchemas(options: ResolvedOptions, limits: ResolvedLimits, dynamicRoles: boolean) {
  const scopes = scopeListSchema(options.scopeWildcards).check(unique('scope'))
  // Roles and groups that come from a function of the tenant are checked once the tenant is known.
  const known = (map: Readonly<Record<string, unknown>>, what: string) =>
    dynamicRoles ? roleNameSchema : roleNameSchema.check(z.refine((name: string) => Object.hasOwn(map, name), `names a ${what} that is not configured`))
  const roles = uniqueList(known(options.roles, 'role'), 'role')
  const groups = uniqueList(known(options.groups, 'group'), 'group')
  const environment = z.enum(options.environments as [string, ...string[]])
  const policy = z.nullish(z.string().check(z.refine((name: string) => limits.policies.has(name), 'names a policy that is not configured')))
  const filters = {
    ownerId: z.optional(identifierSchema),
    tenantId: z.optional(identifierSchema),
    environment: z.optional(environment),
    type: z.optional(typeSchema),
  }
  const page = (defaultLimit: number) => ({
    limit: z._default(z.number().check(z.int(), z.gte(1), z.lte(1000)), defaultLimit),
    cursor: z.nullish(z.string().check(z.maxLength(512))),
  })

  return {
    create: z.strictObject({
      name: nameSchema,
      description: z.nullish(descriptionSchema),
      ownerId: z.nullish(identifierSchema),
      tenantId: z.nullish(identifierSchema),
      environment: z.optional(environment),
      type: z.nullish(typeSchema),
      scopes: z.optional(scopes),
      roles: z.optional(roles),
      groups: z.optional(groups),
      expiresIn: z.nullish(durationSchema),
      expiresAt: z.nullish(dateSchema),
      metadata: z.optional(metadataSchema),
      owner: z.optional(z.record(z.string(), z.unknown())),
      idempotencyKey: z.optional(idempotencyKeySchema),
      policy,
      credits: z.optional(z.number().check(z.int(), z.gte(0), z.lte(Number.MAX_SAFE_INTEGER))),
    }),
    update: z.strictObject({
      name: z.optional(nameSchema),
      description: z.nullish(descriptionSchema),
      type: z.nullish(typeSchema),
      scopes: z.optional(scopes),
      roles: z.optional(roles),
      groups: z.optional(groups),
      metadata: z.optional(metadataSchema),
      expiresIn: z.nullish(durationSchema),
      expiresAt: z.nullish(dateSchema),
      policy,
      ...expectedVersionField,
    }),
    list: z.strictObject({
      ...filters,
      status: z.optional(z.enum(['active', 'disabled', 'expired', 'revoked'])),
      order: z._default(z.enum(['asc', 'desc']), 'asc'),
      ...page(50),
    }),
    expiring: z.strictObject({
      ...filters,
      within: durationSchema.check(z.refine((ms: number) => ms > 0, 'must be longer than 0')),
      ...page(100),
    }),
    rotate: z.strictObject({
      gracePeriod: z._default(durationSchema, 0),
      idempotencyKey: z.optional(idempotencyKeySchema),
      ...contextFields,
      ...expectedVersionField,
    }),
    context: contextSchema,
    versionedContext: versionedContextSchema,
  }
}

/** The schemas of one KeyManager. */
export type InputSchemas = ReturnType<typeof inputSchemas>
