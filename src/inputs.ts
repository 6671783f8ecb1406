import { z } from 'zod'
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
  .min(1)
  .max(200)
  .regex(/\S/, 'must not be blank')
  .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters')
  .regex(WELL_FORMED, 'must not contain unpaired surrogate characters')

const descriptionSchema = z
  .string()
  .max(1000)
  .regex(/^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$/, 'must not contain control characters other than tab and line breaks')
  .regex(WELL_FORMED, 'must not contain unpaired surrogate characters')

function uniqueList<T extends z.ZodType<string>>(item: T, what: string) {
  return z.array(item).max(256).refine((list) => new Set(list).size === list.length, `must not repeat a ${what}`)
}

/** The zod schemas for one KeyManager's inputs (they depend on its environments, roles and groups). */
export function inputSchemas(options: ResolvedOptions) {
  const scopes = scopeListSchema(options.scopeWildcards).refine((list) => new Set(list).size === list.length, 'must not repeat a scope')
  const roles = uniqueList(roleNameSchema.refine((role) => Object.hasOwn(options.roles, role), 'names a role that is not configured'), 'role')
  const groups = uniqueList(roleNameSchema.refine((group) => Object.hasOwn(options.groups, group), 'names a group that is not configured'), 'group')
  const environment = z.enum(options.environments as [string, ...string[]])
  const filters = {
    ownerId: identifierSchema.optional(),
    tenantId: identifierSchema.optional(),
    environment: environment.optional(),
    type: typeSchema.optional(),
  }
  const page = (defaultLimit: number) => ({
    limit: z.number().int().min(1).max(1000).default(defaultLimit),
    cursor: z.string().max(512).nullable().optional(),
  })

  return {
    create: z.strictObject({
      name: nameSchema,
      description: descriptionSchema.nullable().optional(),
      ownerId: identifierSchema.nullable().optional(),
      tenantId: identifierSchema.nullable().optional(),
      environment: environment.optional(),
      type: typeSchema.nullable().optional(),
      scopes: scopes.optional(),
      roles: roles.optional(),
      groups: groups.optional(),
      expiresIn: durationSchema.nullable().optional(),
      expiresAt: dateSchema.nullable().optional(),
      metadata: metadataSchema.optional(),
      owner: z.record(z.string(), z.unknown()).optional(),
      idempotencyKey: idempotencyKeySchema.optional(),
    }),
    update: z.strictObject({
      name: nameSchema.optional(),
      description: descriptionSchema.nullable().optional(),
      type: typeSchema.nullable().optional(),
      scopes: scopes.optional(),
      roles: roles.optional(),
      groups: groups.optional(),
      metadata: metadataSchema.optional(),
      expiresIn: durationSchema.nullable().optional(),
      expiresAt: dateSchema.nullable().optional(),
    }),
    list: z.strictObject({
      ...filters,
      status: z.enum(['active', 'disabled', 'expired', 'revoked']).optional(),
      order: z.enum(['asc', 'desc']).default('asc'),
      ...page(50),
    }),
    expiring: z.strictObject({
      ...filters,
      within: durationSchema.refine((ms) => ms > 0, 'must be longer than 0'),
      ...page(100),
    }),
    rotate: z.strictObject({
      gracePeriod: durationSchema.default(0),
      idempotencyKey: idempotencyKeySchema.optional(),
    }),
  }
}

/** The schemas of one KeyManager. */
export type InputSchemas = ReturnType<typeof inputSchemas>
