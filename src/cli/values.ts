/**
 * Option values, checked with zod and turned into what the KeyManager takes: whole numbers, instants,
 * JSON objects, lists (`--scope a --scope b` or `--scope a,b`), and the change context (`--actor`,
 * `--reason`). A bad value is a {@link UsageError} naming the option.
 */
import { userInfo } from 'node:os'
import * as z from 'zod/mini'
import type { ChangeContext } from '../audit/audit-store.js'
import { fail, PARSE_CONTEXT } from '../validation.js'
import type { Invocation, OptionValues } from './command.js'
import { UsageError } from './exit-codes.js'

/** A whole number given as text. */
export const wholeNumber = z.pipe(
  z.string(),
  z.transform((text: string, context) => (/^\d{1,15}$/.test(text) ? Number(text) : fail(context, 'must be a whole number'))),
)

/** An instant given as ISO 8601 text (`2026-01-31` or `2026-01-31T12:00:00Z`). */
export const instant = z.pipe(
  z.string(),
  z.transform((text: string, context) => {
    const date = /^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) ? new Date(text) : new Date(NaN)
    return Number.isNaN(date.getTime()) ? fail(context, 'must be a date such as 2026-01-31 or 2026-01-31T12:00:00Z') : date
  }),
)

/** A JSON object given as text. */
export const jsonObject = z.pipe(
  z.string(),
  z.transform((text: string, context): Record<string, unknown> => {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      return fail(context, 'must be a JSON object, as in {"plan":"pro"}')
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(context, 'must be a JSON object, as in {"plan":"pro"}')
    return value as Record<string, unknown>
  }),
)

/** A repeatable option's values, each split at commas, empty items dropped. */
export const itemList = z.pipe(
  z.array(z.string()),
  z.transform((values: string[]) => values.flatMap((value) => value.split(',')).map((item) => item.trim()).filter((item) => item !== '')),
)

/** One of a few words. */
export function oneOf<const T extends readonly [string, ...string[]]>(words: T) {
  return z.enum(words, { error: `must be one of ${words.join(', ')}` })
}

/**
 * Checks the option values with `schema` (keys are the options' long names).
 *
 * @throws {@link UsageError} naming the first bad options.
 */
export function readOptions<T>(schema: z.ZodMiniType<T>, values: OptionValues): T {
  const result = schema.safeParse(values, PARSE_CONTEXT)
  if (result.success) return result.data
  const problems = result.error.issues.slice(0, 3).map((issue) => `--${String(issue.path[0] ?? 'option')}: ${issue.message}`)
  throw new UsageError(problems.join('; '))
}

const ACTOR = /^(?:(user|service|key|system):)?(.+)$/s

/** The default actor: `$KEYWARDEN_ACTOR`, else the user running the bin, else none. */
function defaultActor(invocation: Invocation): string | undefined {
  const env = invocation.io.env['KEYWARDEN_ACTOR']
  if (env !== undefined && env !== '') return env
  try {
    return userInfo().username || undefined
  } catch {
    // No passwd entry (some containers): the change is recorded without an actor.
    return undefined
  }
}

/** Who makes the change and why (`--actor [type:]id`, `--reason`), for the audit trail. */
export function changeContext(invocation: Invocation): ChangeContext {
  const given = invocation.values['actor']
  const text = typeof given === 'string' ? given : defaultActor(invocation)
  const reason = invocation.values['reason']
  const match = text === undefined ? null : ACTOR.exec(text)
  const actor = match ? { type: (match[1] ?? 'user') as 'user' | 'service' | 'key' | 'system', id: match[2]! } : undefined
  return { ...(actor ? { actor } : {}), ...(typeof reason === 'string' ? { reason } : {}) }
}
