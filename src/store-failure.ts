/**
 * Turns whatever a store or its driver threw into a {@link StoreError} that carries no stored value.
 * Drivers put what they were sent on their errors (ioredis: the script arguments, with the record's
 * hash; PostgreSQL: "Failing row contains …"; mysql2: the statement), so the driver's error is never
 * kept as is: its cause chain is rebuilt from a short list of diagnostic fields, with anything shaped
 * like a hash or a secret masked in messages and stacks.
 */
import { KeywardenError, StoreError } from './errors.js'

/**
 * What a {@link StoreError} keeps of the driver's error: its name, message and stack (masked), and the
 * plain diagnostic fields drivers use to say what went wrong (`code`, `errno`, `sqlState`, `severity`,
 * `syscall`, …). Values the store was sent (`detail`, `command`, `sql`, `parameters`) are dropped.
 *
 * @example
 * ```ts
 * import { StoreError, type StoreFailureCause } from 'keywarden'
 *
 * try {
 *   await keys.create({ name: 'CI', environment: 'live' })
 * } catch (error) {
 *   if (error instanceof StoreError) {
 *     const cause = error.cause as StoreFailureCause
 *     console.error('key store failed', cause.name, cause.code, cause.message)
 *   }
 * }
 * ```
 */
export interface StoreFailureCause extends Error {
  /** The driver's error code, e.g. `ECONNREFUSED`, `23505` (PostgreSQL) or `ER_LOCK_DEADLOCK`. */
  readonly code?: string | number
  /** Any other diagnostic field the driver set, copied when it is a string, number or boolean. */
  readonly [field: string]: unknown
}

/** Fields copied from a driver error: they name what failed, never the data that was sent. */
const DIAGNOSTIC_FIELDS = [
  'code',
  'errno',
  'sqlState',
  'sqlMessage',
  'severity',
  'syscall',
  'address',
  'port',
  'fatal',
  'constraint',
  'table',
  'column',
  'dataType',
  'schema',
  'routine',
] as const

/** How deep a cause chain is followed; deeper links are summarised. */
const MAX_CAUSE_DEPTH = 5
/** How many errors of an `AggregateError` are kept. */
const MAX_AGGREGATED = 10

/** Random-looking: digits and letters of both cases, and (for base64) not a path. */
function randomLooking(run: string): boolean {
  return /\d/.test(run) && /[A-Z]/.test(run) && /[a-z]/.test(run) && (run.match(/\//g)?.length ?? 0) <= 2
}

const MASKS: readonly (readonly [RegExp, (match: string) => string])[] = [
  // A stored hash in its self-describing form (kw1$scheme$pepper$digest), whatever the scheme.
  [/kw\d+\$[^\s"'`,;)\]}]*/g, () => '[redacted hash]'],
  // A bare digest, a pepper in hex, and anything else as long and as random-looking.
  [/[0-9a-fA-F]{32,}/g, () => '[redacted]'],
  // A secret (32 base62 characters), a token carrying one, or 24 bytes or more of base64.
  [/[A-Za-z0-9+/]{32,}={0,2}/g, (run) => (randomLooking(run) ? '[redacted]' : run)],
]

/** `text` with every hash- or secret-shaped run masked. */
export function maskStoredValues(text: string): string {
  let masked = text
  for (const [pattern, replace] of MASKS) masked = masked.replace(pattern, replace)
  return masked
}

/** The error built for each link of the chain; its own class so logs show that it is a summary. */
class StoreFailure extends Error {}

function summarise(value: unknown, depth: number): Error {
  if (!(value instanceof Error)) {
    // A thrown string or object may be anything the store was sent: only its type is kept.
    return Object.assign(new StoreFailure(`The store threw a non-Error value (${value === null ? 'null' : typeof value})`), { name: 'StoreFailure' })
  }
  const summary = new StoreFailure(maskStoredValues(String(value.message)))
  summary.name = typeof value.name === 'string' ? maskStoredValues(value.name) : 'Error'
  summary.stack = typeof value.stack === 'string' ? maskStoredValues(value.stack) : `${summary.name}: ${summary.message}`
  const fields = summary as unknown as Record<string, unknown>
  for (const field of DIAGNOSTIC_FIELDS) {
    let item: unknown
    try {
      item = (value as unknown as Record<string, unknown>)[field]
    } catch {
      continue
    }
    if (typeof item === 'string') fields[field] = maskStoredValues(item)
    else if (typeof item === 'number' || typeof item === 'boolean') fields[field] = item
  }
  if (depth < MAX_CAUSE_DEPTH && value.cause !== undefined) summary.cause = summarise(value.cause, depth + 1)
  if (value instanceof AggregateError && Array.isArray(value.errors)) {
    fields['errors'] = value.errors.slice(0, MAX_AGGREGATED).map((item: unknown) => summarise(item, depth + 1))
  }
  return summary
}

/**
 * The {@link StoreError} for a failure during `operation`. A keywarden error passes through unchanged
 * (a store that already reported a `StoreError` is not wrapped twice); anything else becomes a
 * `StoreError` whose `cause` is a masked summary of it (see {@link StoreFailureCause}).
 */
export function asStoreError(operation: string, error: unknown): KeywardenError {
  if (error instanceof KeywardenError) return error
  return new StoreError(operation, { cause: summarise(error, 0) })
}

/** Runs `call`, turning a failure into {@link asStoreError}'s error. */
export async function callStore<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (error) {
    throw asStoreError(operation, error)
  }
}
