/**
 * The management API's schemas, in one place: the request schemas validate what arrives (shape and
 * JSON types; the KeyManager then checks meaning, such as configured roles), and with the response
 * schemas they become the OpenAPI document through zod's JSON Schema output.
 */
import * as z from 'zod/mini'
import type { ResolvedOptions } from '../../options.js'
import { typeSchema } from '../../validation.js'

const text = (max: number) => z.string().check(z.maxLength(max))
const identifier = z.string().check(z.minLength(1), z.maxLength(256))
const names = z.array(z.string().check(z.minLength(1), z.maxLength(128))).check(z.maxLength(256))
const duration = z.union([z.int().check(z.gte(0)), z.string().check(z.regex(/^\d+(?:ms|s|m|h|d|w)$/, "must be milliseconds or a duration such as '30d'"))])
const instant = z.iso.datetime({ offset: true })
const reason = z.optional(text(1000))
const count = z.int().check(z.gte(0), z.lte(Number.MAX_SAFE_INTEGER))
/** A window from now: digits with an optional unit, more than nothing. */
const windowFromNow = z.string().check(z.regex(/^(?!0+(?:ms|s|m|h|d|w)?$)\d{1,15}(?:ms|s|m|h|d|w)?$/, "must be a duration longer than 0, such as '2d'"))

/** The request schemas of one router; the environments come from the KeyManager. */
export function requestSchemas(options: ResolvedOptions) {
  const environment = z.enum(options.environments as [string, ...string[]])
  const status = z.enum(['active', 'disabled', 'expired', 'revoked'])
  const limit = z.int().check(z.gte(1), z.lte(1000))
  const cursor = text(512)
  // What create and update both set; create adds the immutable fields, update makes the name optional.
  const editable = {
    description: z.nullish(text(1000)),
    type: z.nullish(typeSchema),
    scopes: z.optional(names),
    roles: z.optional(names),
    groups: z.optional(names),
    expiresIn: z.nullish(duration),
    expiresAt: z.nullish(instant),
    metadata: z.optional(z.record(z.string(), z.unknown())),
    policy: z.nullish(text(128)),
  }
  return {
    create: z.strictObject({
      name: text(200),
      ownerId: z.optional(identifier),
      environment: z.optional(environment),
      ...editable,
      credits: z.optional(count),
    }),
    update: z.strictObject({ name: z.optional(text(200)), ...editable }),
    change: z.strictObject({ reason }),
    rotate: z.strictObject({ gracePeriod: z.optional(duration), reason }),
    credits: z.union([z.strictObject({ add: count.check(z.gte(1)), reason }), z.strictObject({ set: count, reason })]),
    listQuery: z.strictObject({
      ownerId: z.optional(identifier),
      environment: z.optional(environment),
      type: z.optional(typeSchema),
      status: z.optional(status),
      order: z.optional(z.enum(['asc', 'desc'])),
      limit: z.optional(limit),
      cursor: z.optional(cursor),
    }),
    expiringQuery: z.strictObject({
      within: windowFromNow,
      ownerId: z.optional(identifier),
      environment: z.optional(environment),
      type: z.optional(typeSchema),
      limit: z.optional(limit),
      cursor: z.optional(cursor),
    }),
    auditQuery: z.strictObject({ limit: z.optional(limit), cursor: z.optional(cursor) }),
    emptyQuery: z.strictObject({}),
  }
}

/** The request schemas of one router. */
export type RequestSchemas = ReturnType<typeof requestSchemas>

const nullableText = z.nullable(z.string())
const nullableInstant = z.nullable(z.iso.datetime())

export const actorSchema = z.object({ type: z.enum(['user', 'service', 'key', 'system']), id: z.string(), tenantId: z.optional(z.string()) })

/** An `ApiKey` as JSON (instants as ISO 8601 strings) with its `status` now. */
export const keySchema = z.object({
  id: z.string(),
  name: z.string(),
  description: nullableText,
  ownerId: nullableText,
  tenantId: nullableText,
  environment: z.string(),
  type: nullableText,
  scopes: z.array(z.string()),
  roles: z.array(z.string()),
  groups: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  start: z.string(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  expiresAt: nullableInstant,
  lastUsedAt: nullableInstant,
  enabled: z.boolean(),
  revokedAt: nullableInstant,
  policy: z.optional(z.string()),
  createdBy: z.nullable(actorSchema),
  updatedBy: z.nullable(actorSchema),
  version: z.int(),
  disabledReason: nullableText,
  disabledBy: z.nullable(actorSchema),
  status: z.enum(['active', 'disabled', 'expired', 'revoked']),
})

export const responseSchemas = {
  key: keySchema,
  issued: z.object({ key: keySchema, token: z.string() }),
  rotated: z.object({ key: keySchema, token: z.string(), previousSecretValidUntil: nullableInstant }),
  page: z.object({ items: z.array(keySchema), nextCursor: nullableText }),
  meta: z.object({
    principal: z.object({ id: z.string(), tenantId: nullableText, role: z.string(), admin: z.boolean() }),
    environments: z.array(z.string()),
    types: z.array(z.string()),
    policies: z.array(z.string()),
    grantable: z.object({ scopes: z.array(z.string()), roles: z.array(z.string()), groups: z.array(z.string()) }),
    expiry: z.object({
      presets: z.array(z.string()),
      defaultMs: z.nullable(z.int()),
      maxMs: z.nullable(z.int()),
      neverAllowed: z.boolean(),
    }),
    quota: z.object({ limit: z.nullable(z.int()), used: z.int(), remaining: z.nullable(z.int()) }),
  }),
  permissions: z.object({
    scopes: z.array(z.string()),
    grants: z.array(
      z.union([
        z.object({ scope: z.string(), via: z.literal('key') }),
        z.object({ scope: z.string(), via: z.literal('role'), role: z.string() }),
        z.object({ scope: z.string(), via: z.literal('group'), group: z.string(), role: z.string() }),
      ]),
    ),
  }),
  audit: z.object({
    items: z.array(
      z.object({
        id: z.string(),
        at: z.iso.datetime(),
        action: z.enum(['created', 'updated', 'enabled', 'disabled', 'revoked', 'deleted', 'rotated', 'credits_changed']),
        keyId: nullableText,
        ownerId: nullableText,
        tenantId: nullableText,
        actor: z.nullable(actorSchema),
        reason: nullableText,
        requestId: nullableText,
        changes: z.record(z.string(), z.object({ from: z.unknown(), to: z.unknown() })),
      }),
    ),
    nextCursor: nullableText,
  }),
  credits: z.object({ credits: z.nullable(z.object({ remaining: z.int(), refillAt: nullableInstant })) }),
}
