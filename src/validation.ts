/**
 * Input validation shared by every boundary: reading caller objects safely, turning zod issues into
 * keywarden's (never echoing input), and the schemas of the common field types.
 */
import { en } from 'zod/locales'
import * as z from 'zod/mini'
import { ValidationError, type ValidationIssue } from './errors.js'
import { parseDuration, parseTimerDuration, TIMER_DURATION_MESSAGE } from './policy/duration.js'
import { ROLE_NAME_PATTERN, scopeProblem } from './policy/scopes.js'
import type { JsonObject, JsonValue } from './store.js'

/**
 * zod's English messages, passed to every parse: `zod/mini` loads no locale, and configuring zod
 * globally would change the host application's zod too.
 */
export const PARSE_CONTEXT: z.core.ParseContext<z.core.$ZodIssue> = { error: /* @__PURE__ */ en().localeError }

/** What stands in the path for a field name that is not ours: the name itself is never repeated. */
export const UNKNOWN_FIELD = '(unknown field)'

/**
 * Field names of keywarden's own records and inputs. Given where a call does not take them (say
 * `ownerId` to `update`), they are named in the error: they are our words, not the caller's data.
 */
const OWN_FIELD_NAMES: ReadonlySet<string> = new Set([
  'id', 'name', 'description', 'ownerId', 'tenantId', 'environment', 'type', 'scopes', 'roles', 'groups', 'metadata', 'start',
  'createdAt', 'updatedAt', 'expiresAt', 'expiresIn', 'lastUsedAt', 'enabled', 'revokedAt', 'version', 'hash', 'previousHash',
  'owner', 'idempotencyKey', 'gracePeriod', 'status', 'limit', 'cursor', 'order', 'within', 'notify', 'pepper', 'store',
])

/** The name to put in an issue's path for `key`: itself when it is one of ours, else {@link UNKNOWN_FIELD}. */
function fieldName(key: string, known: readonly string[]): string {
  return known.includes(key) || OWN_FIELD_NAMES.has(key) ? key : UNKNOWN_FIELD
}

interface SchemaDef {
  readonly type?: string
  readonly shape?: Record<string, { _zod: { def: SchemaDef } }>
  readonly innerType?: { _zod: { def: SchemaDef } }
  readonly in?: { _zod: { def: SchemaDef } }
}

/** The field names the object schema at `path` accepts, or `undefined` when that cannot be told. */
function knownFields(schema: z.core.$ZodType | undefined, path: readonly PropertyKey[]): string[] | undefined {
  let def = (schema as { _zod?: { def: SchemaDef } } | undefined)?._zod?.def
  const unwrap = () => {
    while (def !== undefined && def.shape === undefined) {
      const next = def.innerType ?? def.in
      if (next === undefined) return
      def = next._zod.def
    }
  }
  unwrap()
  for (const part of path) {
    def = typeof part === 'string' ? def?.shape?.[part]?._zod.def : undefined
    unwrap()
  }
  return def?.shape === undefined ? undefined : Object.keys(def.shape)
}

/**
 * Converts zod issues into keywarden's, without copying input into messages. An unknown field is
 * named only when it is one of keywarden's own field names (a caller's field name can be anything, a
 * token included); the message lists the known fields when `schema` tells them.
 */
export function toIssues(error: z.core.$ZodError, schema?: z.core.$ZodType): ValidationIssue[] {
  return error.issues.flatMap((issue): ValidationIssue[] => {
    const path = issue.path.map((part) => (typeof part === 'symbol' ? String(part.description) : part))
    if (issue.code === 'unrecognized_keys') {
      const known = knownFields(schema, issue.path)
      const message = known === undefined ? 'is not a known field' : `is not a known field (known: ${known.join(', ')})`
      return issue.keys.map((key) => ({ path: [...path, fieldName(key, known ?? [])], message }))
    }
    return [{ path, message: issue.message }]
  })
}

const UNREADABLE = 'could not be read (a getter or proxy trap threw)'

/**
 * The input object's own properties, each read exactly once, as a fresh plain object. Inherited
 * properties are not input (a polluted `Object.prototype` must not grant scopes), and a getter read
 * once cannot show the validator one value and the store another. Anything else is returned as is.
 *
 * @throws {@link ValidationError} naming the field whose getter threw when it is one of `known` (the
 *   input, for a proxy; `(unknown field)` otherwise: a name that is not ours is never repeated).
 */
export function readInput(value: unknown, known: readonly string[] = []): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value
  let keys: (string | symbol)[]
  try {
    keys = Reflect.ownKeys(value)
  } catch {
    throw new ValidationError([{ path: [], message: UNREADABLE }])
  }
  // No prototype: zod reads every field of its shape, and an omitted one must not come from Object.prototype.
  const copy = Object.create(null) as Record<string, unknown>
  const issues: ValidationIssue[] = []
  for (const key of keys) {
    if (typeof key === 'symbol') continue
    try {
      const descriptor = Reflect.getOwnPropertyDescriptor(value, key)
      if (descriptor === undefined) continue
      const field = 'value' in descriptor ? descriptor.value : descriptor.get?.call(value)
      // Defined, not assigned: a field named __proto__ stays a field (and is refused as unknown).
      Object.defineProperty(copy, key, { value: field, enumerable: true, writable: true, configurable: true })
    } catch {
      issues.push({ path: [fieldName(key, known)], message: UNREADABLE })
    }
  }
  if (issues.length > 0) throw new ValidationError(issues)
  return copy
}

/** Parses `value` with `schema`, or throws a {@link ValidationError} naming the offending fields. */
export function parseInput<T>(schema: z.ZodMiniType<T>, value: unknown): T {
  const fields = readInput(value, knownFields(schema, []))
  let result: ReturnType<typeof schema.safeParse>
  try {
    result = schema.safeParse(fields, PARSE_CONTEXT)
  } catch {
    // A value deeper down whose getter or proxy trap threw while zod read it. What it threw may
    // repeat the input, so it is not kept as the cause.
    throw new ValidationError([{ path: [], message: UNREADABLE }])
  }
  if (!result.success) throw new ValidationError(toIssues(result.error, schema))
  // Without a prototype, an omitted field reads as undefined even when Object.prototype is polluted.
  const data: unknown = result.data
  return typeof data === 'object' && data !== null && !Array.isArray(data) ? (Object.assign(Object.create(null), data) as T) : result.data
}

/**
 * Fails a transform with `message`, as classic zod's `context.addIssue` does (the issue stops the
 * checks after it); `zod/mini` hands transforms the bare parse payload.
 */
export function fail(context: z.core.ParsePayload, message: string): never {
  context.issues.push({ code: 'custom', message, input: context.value })
  return z.NEVER
}

/** Largest serialised metadata object, in UTF-16 code units of its JSON text. */
export const MAX_METADATA_LENGTH = 8 * 1024
/** Deepest nesting accepted in metadata. */
export const MAX_METADATA_DEPTH = 8

const NOT_JSON = 'must contain only JSON values (strings, finite numbers, booleans, null, arrays, plain objects)'
const NOT_DATA = 'must hold plain data properties only (no getters, symbol keys, hidden properties or array holes)'
const TOO_BIG = `must serialise to at most ${MAX_METADATA_LENGTH} characters of JSON`

class MetadataProblem extends Error {}

/**
 * A copy of a JSON value made of fresh plain objects and arrays, reading every property once (so a
 * getter or proxy cannot change it after validation, and the caller's object is not kept). `budget`
 * counts down a lower bound of the JSON length, so a huge value is refused without copying it all.
 * -0 becomes 0, as in JSON: every store then holds the same value.
 */
function copyJson(value: unknown, depth: number, budget: { left: number }): JsonValue {
  if (value === null || typeof value === 'boolean') {
    budget.left -= 4
    return value
  }
  if (typeof value === 'string') {
    budget.left -= value.length + 2
    if (budget.left < 0) throw new MetadataProblem(TOO_BIG)
    return value
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new MetadataProblem('numbers must be finite')
    budget.left -= 1
    // -0 is 0 in JSON, and in every store but memory: made 0 here, so all stores agree.
    return value === 0 ? 0 : value
  }
  if (typeof value !== 'object') throw new MetadataProblem(NOT_JSON)
  if (depth >= MAX_METADATA_DEPTH) throw new MetadataProblem(`must not nest deeper than ${MAX_METADATA_DEPTH} levels`)
  budget.left -= 2
  const prototype = Object.getPrototypeOf(value)
  if (Array.isArray(value)) {
    if (prototype !== Array.prototype) throw new MetadataProblem(NOT_JSON)
    const length = value.length
    // Each item takes at least a character and a comma: refuse a huge array before listing its keys.
    if (2 * length - 1 > budget.left) throw new MetadataProblem(TOO_BIG)
    // Own keys of a dense array without extras: its indexes and `length`.
    if (Reflect.ownKeys(value).length !== length + 1) throw new MetadataProblem(NOT_DATA)
    const copy: JsonValue[] = []
    for (let index = 0; index < length; index++) {
      const descriptor = Reflect.getOwnPropertyDescriptor(value, index)
      if (descriptor === undefined || !('value' in descriptor)) throw new MetadataProblem(NOT_DATA)
      // The comma before every item but the first.
      if (index > 0) budget.left -= 1
      copy.push(copyJson(descriptor.value, depth + 1, budget))
      if (budget.left < 0) throw new MetadataProblem(TOO_BIG)
    }
    return copy
  }
  if (prototype !== Object.prototype) throw new MetadataProblem(NOT_JSON)
  const copy: Record<string, JsonValue> = {}
  const keys = Reflect.ownKeys(value)
  for (const [index, key] of keys.entries()) {
    const descriptor = Reflect.getOwnPropertyDescriptor(value, key)
    if (typeof key === 'symbol' || descriptor === undefined || !descriptor.enumerable || !('value' in descriptor)) throw new MetadataProblem(NOT_DATA)
    // `"key":`, and the comma before every entry but the first.
    budget.left -= key.length + 3 + (index > 0 ? 1 : 0)
    if (budget.left < 0) throw new MetadataProblem(TOO_BIG)
    // Defined, not assigned: a key named __proto__ stays a key and never becomes the prototype.
    Object.defineProperty(copy, key, { value: copyJson(descriptor.value, depth + 1, budget), enumerable: true, writable: true, configurable: true })
  }
  return copy
}

/**
 * A plain JSON object within the size and depth limits, returned as a copy of plain data (see
 * {@link copyJson}). Checked by hand so cycles cannot recurse forever.
 */
export const metadataSchema = z.pipe(z.unknown(), z.transform((value, context): JsonObject => {
  let problem: string
  try {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.getPrototypeOf(value) !== Object.prototype) {
      problem = 'must be a plain JSON object'
    } else {
      const copy = copyJson(value, 0, { left: MAX_METADATA_LENGTH }) as JsonObject
      if (JSON.stringify(copy).length <= MAX_METADATA_LENGTH) return copy
      problem = TOO_BIG
    }
  } catch (error) {
    problem = error instanceof MetadataProblem ? error.message : UNREADABLE
  }
  return fail(context, problem)
}))

/** A duration in milliseconds or as `'30d'`-style text, parsed to milliseconds. */
export const durationSchema = z.pipe(
  z.union([z.number(), z.string()]),
  z.transform((value: number | string, context) => {
    const ms = parseDuration(value)
    if (ms === undefined) return fail(context, "must be a whole number of milliseconds or a string such as '90s', '15m', '24h', '30d'")
    return ms
  }),
)

/**
 * A duration that backs a timer (a timeout, a flush interval), parsed to milliseconds: 1 ms up to the
 * longest delay timers keep. The one validator of every timer-backed option.
 */
export const timerDurationSchema = z.pipe(
  z.union([z.number(), z.string()]),
  z.transform((value: number | string, context) => {
    const ms = parseTimerDuration(value)
    if (ms === undefined) return fail(context, TIMER_DURATION_MESSAGE)
    return ms
  }),
)

/** 10000-01-01T00:00:00Z in epoch milliseconds: dates must come before it. */
const YEAR_10000_MS = 253402300800000

/**
 * A valid `Date` inside the range this library accepts (years 1970–9999), returned as a fresh `Date`.
 * The instant is read from the Date's own time value, once: a subclass or an own `getTime` cannot show
 * the validator one instant and the expiry check another.
 */
export const dateSchema = z.pipe(z.unknown(), z.transform((value, context): Date => {
  let ms = NaN
  try {
    if (value instanceof Date) ms = Date.prototype.getTime.call(value)
  } catch {
    // An object made from Date.prototype without being a Date.
  }
  if (Number.isNaN(ms)) return fail(context, 'must be a valid Date')
  if (ms < 0 || ms >= YEAR_10000_MS) return fail(context, 'must be between 1970 and 9999')
  return new Date(ms)
}))

/**
 * Text every store keeps exactly: no NUL (PostgreSQL refuses it) and no unpaired surrogate (UTF-8
 * drivers turn it into U+FFFD, so two different IDs would become one).
 */
export const STORABLE_TEXT = /^[^\u0000\p{Cs}]*$/u

/** Short identifiers: owner, tenant and key IDs. */
export const identifierSchema = z.string().check(z.minLength(1), z.maxLength(256), z.regex(STORABLE_TEXT, 'must not contain NUL or unpaired surrogate characters'))

/**
 * Idempotency keys of create and rotate: 16 to 255 visible ASCII characters, so that a UUID or a
 * random token fits and a guessable short word does not.
 */
export const idempotencyKeySchema = z
  .string()
  .check(z.minLength(16), z.maxLength(255), z.regex(/^[\x21-\x7e]+$/, 'must be visible ASCII characters (a UUID or a random token)'))

/** Key type labels. */
export const typeSchema = z
  .string()
  .check(z.regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'must be 1-64 letters, digits or _ . : -, starting with a letter or digit'))

/** Role and group names. */
export const roleNameSchema = z.string().check(z.regex(ROLE_NAME_PATTERN, 'must be 1-64 letters, digits or _ . : -, starting with a letter or digit'))

/** A list of scopes, each checked against the scope syntax. */
export function scopeListSchema(wildcards: boolean) {
  return z
    .array(
      z.string().check(
        z.superRefine((scope: string, context) => {
          const problem = scopeProblem(scope, wildcards)
          if (problem) context.addIssue({ code: 'custom', message: problem })
        }),
      ),
    )
    .check(z.maxLength(256))
}
