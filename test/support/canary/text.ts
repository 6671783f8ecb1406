/** How the leak canary turns values into scannable text, without ever throwing. */
import { inspect } from 'node:util'

/** `util.inspect` deep enough for nested causes and records; never throws. */
export function safeInspect(value: unknown): string {
  try {
    return inspect(value, { depth: 8, breakLength: Infinity, maxArrayLength: 1000, maxStringLength: 1_000_000, getters: false })
  } catch {
    return '[not inspectable]'
  }
}

/** JSON as a log line would carry it, or inspect's text when JSON cannot (cycles, throwing getters). */
export function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return safeInspect(value)
  }
}

/** Message, stack and own fields of an error and of every error in its `cause` chain (and AggregateError's list). */
export function errorText(error: unknown, depth = 0): string {
  if (depth > 8) return ''
  if (!(error instanceof Error)) return safeInspect(error)
  try {
    const parts = [String(error), error.stack ?? '', safeInspect(error)]
    if (error instanceof AggregateError) for (const inner of error.errors) parts.push(errorText(inner, depth + 1))
    if (error.cause !== undefined && error.cause !== error) parts.push(`cause: ${errorText(error.cause, depth + 1)}`)
    return parts.join('\n')
  } catch {
    // A hostile error (a throwing getter on message or cause): what inspect can show is all there is.
    return safeInspect(error)
  }
}

/**
 * Everything an error can show, for tests that prove it shows no stored value: `util.inspect` with no
 * depth limit and hidden fields, and JSON of the whole chain (message, stack, every own field, `cause`
 * and `AggregateError.errors`, recursively; a cycle is cut where it closes).
 */
export function errorTextInFull(error: unknown): string {
  const seen = new Set<unknown>()
  const plain = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(plain)
    if (!(value instanceof Error)) return value
    if (seen.has(value)) return '[cycle]'
    seen.add(value)
    const out: Record<string, unknown> = { name: value.name, message: value.message, stack: value.stack }
    for (const key of Object.getOwnPropertyNames(value)) if (!(key in out)) out[key] = plain((value as unknown as Record<string, unknown>)[key])
    return out
  }
  let json: string
  try {
    json = JSON.stringify(plain(error), (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)) ?? String(error)
  } catch (failure) {
    json = `[not serialisable: ${String(failure)}]`
  }
  return `${inspect(error, { depth: Infinity, showHidden: true, breakLength: Infinity, maxArrayLength: Infinity, maxStringLength: Infinity, getters: false })}\n${json}`
}
