import { z } from 'zod'
import { ValidationError, type ValidationIssue } from './errors.js'
import { parseDuration } from './policy/duration.js'
import { ROLE_NAME_PATTERN, scopeProblem } from './policy/scopes.js'
import type { JsonObject } from './store.js'

const SAFE_FIELD_NAME = /^[A-Za-z0-9_$-]{1,64}$/

/**
 * Converts zod issues into keywarden's, without copying input values into messages: an unknown
 * field is named only when its name is short and plain.
 */
export function toIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.flatMap((issue): ValidationIssue[] => {
    const path = issue.path.map((part) => (typeof part === 'symbol' ? String(part.description) : part))
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        path: [...path, SAFE_FIELD_NAME.test(key) ? key : '(unknown field)'],
        message: 'is not a known field',
      }))
    }
    return [{ path, message: issue.message }]
  })
}

/** Parses `value` with `schema`, or throws a {@link ValidationError} naming the offending fields. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value)
  if (!result.success) throw new ValidationError(toIssues(result.error))
  return result.data
}

/** Largest serialised metadata object, in UTF-16 code units of its JSON text. */
export const MAX_METADATA_LENGTH = 8 * 1024
/** Deepest nesting accepted in metadata. */
export const MAX_METADATA_DEPTH = 8

function jsonProblem(value: unknown, depth: number): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'numbers must be finite'
  if (depth >= MAX_METADATA_DEPTH) return `must not nest deeper than ${MAX_METADATA_DEPTH} levels`
  if (Array.isArray(value)) {
    for (const item of value) {
      const problem = jsonProblem(item, depth + 1)
      if (problem) return problem
    }
    return undefined
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(value)) {
      const problem = jsonProblem(item, depth + 1)
      if (problem) return problem
    }
    return undefined
  }
  return 'must contain only JSON values (strings, finite numbers, booleans, null, arrays, plain objects)'
}

/** A plain JSON object within the size and depth limits. Checked by hand so cycles cannot recurse forever. */
export const metadataSchema = z.custom<JsonObject>().superRefine((value, context) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.getPrototypeOf(value) !== Object.prototype) {
    context.addIssue({ code: 'custom', message: 'must be a plain JSON object' })
    return
  }
  const problem = jsonProblem(value, 0)
  if (problem) {
    context.addIssue({ code: 'custom', message: problem })
    return
  }
  if (JSON.stringify(value).length > MAX_METADATA_LENGTH) {
    context.addIssue({ code: 'custom', message: `must serialise to at most ${MAX_METADATA_LENGTH} characters of JSON` })
  }
})

/** A duration in milliseconds or as `'30d'`-style text, parsed to milliseconds. */
export const durationSchema = z
  .union([z.number(), z.string()])
  .transform((value, context) => {
    const ms = parseDuration(value)
    if (ms === undefined) {
      context.addIssue({
        code: 'custom',
        message: "must be a whole number of milliseconds or a string such as '90s', '15m', '24h', '30d'",
      })
      return z.NEVER
    }
    return ms
  })

/** A valid `Date` inside the range this library accepts (years 1970–9999). */
export const dateSchema = z
  .date({ error: 'must be a valid Date' })
  .refine((date) => date.getTime() >= 0 && date.getTime() < 253402300800000, 'must be between 1970 and 9999')

/** Short identifiers: owner, tenant and key IDs. */
export const identifierSchema = z.string().min(1).max(256)

/**
 * Idempotency keys of create and rotate: 16 to 255 visible ASCII characters, so that a UUID or a
 * random token fits and a guessable short word does not.
 */
export const idempotencyKeySchema = z
  .string()
  .min(16)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'must be visible ASCII characters (a UUID or a random token)')

/** Key type labels. */
export const typeSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'must be 1-64 letters, digits or _ . : -, starting with a letter or digit')

/** Role and group names. */
export const roleNameSchema = z.string().regex(ROLE_NAME_PATTERN, 'must be 1-64 letters, digits or _ . : -, starting with a letter or digit')

/** A list of scopes, each checked against the scope syntax. */
export function scopeListSchema(wildcards: boolean) {
  return z.array(
    z.string().superRefine((scope, context) => {
      const problem = scopeProblem(scope, wildcards)
      if (problem) context.addIssue({ code: 'custom', message: problem })
    }),
  ).max(256)
}
