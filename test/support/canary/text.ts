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
