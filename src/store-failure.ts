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

/** How deep a cause chain is followed; a deeper cause is replaced by a note saying it was left out. */
const MAX_CAUSE_DEPTH = 5
/** How many errors of an `AggregateError` are kept. */
const MAX_AGGREGATED = 10
/** How many errors one summary holds at most, over every cause and aggregated error (nesting multiplies them). */
const MAX_SUMMARIES = 40

/**
 * Random-looking: letters of both cases and a digit, or as many capitals as a random string has (a
 * secret without a digit, about one in 300); never a path followed by its file extension.
 */
function randomLooking(run: string, next: string): boolean {
  if (run.includes('/') && /^\.[A-Za-z]/.test(next)) return false
  const capitals = run.match(/[A-Z]/g)?.length ?? 0
  return /[a-z]/.test(run) && capitals > 0 && (/\d/.test(run) || capitals * 4 >= run.length)
}

const MASKS: readonly (readonly [RegExp, (match: string, next: string) => string])[] = [
  // A stored hash in its self-describing form (kw1$scheme$pepper$digest), whatever the scheme.
  [/kw\d+\$[^\s"'`,;)\]}]*/g, () => '[redacted hash]'],
  // A bare digest, a pepper in hex, and anything else as long and as random-looking.
  [/[0-9a-fA-F]{32,}/g, () => '[redacted]'],
  // A secret (32 base62 characters), a token carrying one, or 24 bytes or more of base64 or base64url.
  [/[A-Za-z0-9+/_-]{32,}={0,2}/g, (run, next) => (randomLooking(run, next) ? '[redacted]' : run)],
]

/** `text` with every hash- or secret-shaped run masked. */
export function maskStoredValues(text: string): string {
  let masked = text
  for (const [pattern, replace] of MASKS) {
    masked = masked.replace(pattern, (run: string, offset: number, whole: string) => replace(run, whole.slice(offset + run.length, offset + run.length + 2)))
  }
  return masked
}

/** The error built for each link of the chain; its own class so logs show that it is a summary. */
class StoreFailure extends Error {}

/** `object[key]`, or `undefined` when reading it throws (a getter, a proxy trap). */
function read(object: object, key: string): unknown {
  try {
    return (object as Record<string, unknown>)[key]
  } catch {
    return undefined
  }
}

function isInstance(value: unknown, type: abstract new (...args: never[]) => unknown): boolean {
  try {
    return value instanceof type
  } catch {
    // A proxy whose getPrototypeOf trap throws.
    return false
  }
}

function note(message: string): StoreFailure {
  const failure = new StoreFailure(message)
  failure.name = 'StoreFailure'
  return failure
}

function summarise(value: unknown, depth: number, budget: { left: number }): Error {
  budget.left--
  if (!isInstance(value, Error)) {
    // A thrown string or object may be anything the store was sent: only its type is kept.
    return note(`The store threw a non-Error value (${value === null ? 'null' : typeof value})`)
  }
  const error = value as Error
  const message = read(error, 'message')
  const summary = new StoreFailure(typeof message === 'string' ? maskStoredValues(message) : '')
  const name = read(error, 'name')
  summary.name = typeof name === 'string' ? maskStoredValues(name) : 'Error'
  const stack = read(error, 'stack')
  summary.stack = typeof stack === 'string' ? maskStoredValues(stack) : `${summary.name}: ${summary.message}`
  const fields = summary as unknown as Record<string, unknown>
  for (const field of DIAGNOSTIC_FIELDS) {
    const item = read(error, field)
    if (typeof item === 'string') fields[field] = maskStoredValues(item)
    else if (typeof item === 'number' || typeof item === 'boolean') fields[field] = item
  }
  const cause = read(error, 'cause')
  if (cause !== undefined) {
    summary.cause = depth < MAX_CAUSE_DEPTH && budget.left > 0 ? summarise(cause, depth + 1, budget) : note('(deeper causes left out)')
  }
  const errors = isInstance(error, AggregateError) ? read(error, 'errors') : undefined
  if (Array.isArray(errors)) {
    const kept: Error[] = []
    for (let i = 0; i < errors.length && i < MAX_AGGREGATED && budget.left > 0 && depth < MAX_CAUSE_DEPTH; i++) kept.push(summarise(read(errors, String(i)), depth + 1, budget))
    if (kept.length < errors.length) kept.push(note(`(${errors.length - kept.length} more errors left out)`))
    fields['errors'] = kept
  }
  return summary
}

/** The masked summary of `error`, the cause every {@link StoreError} built here carries. */
function summaryOf(error: unknown): Error {
  return summarise(error, 0, { left: MAX_SUMMARIES })
}

/**
 * The {@link StoreError} for a failure during `operation`. A keywarden error passes through (a store
 * that already reported a `StoreError` is not wrapped twice), with its `cause`, if it has one that is
 * not a summary yet, replaced by the masked summary of it: a store that wraps its driver's error in a
 * keywarden error does not smuggle the driver's detail past the masking. Anything else becomes a
 * `StoreError` whose `cause` is a masked summary of it (see {@link StoreFailureCause}).
 */
export function asStoreError(operation: string, error: unknown): KeywardenError {
  if (!isInstance(error, KeywardenError)) return new StoreError(operation, { cause: summaryOf(error) })
  const passed = error as KeywardenError
  const cause = read(passed, 'cause')
  if (cause === undefined || isInstance(cause, StoreFailure)) return passed
  try {
    Object.defineProperty(passed, 'cause', { value: summaryOf(cause), writable: true, configurable: true, enumerable: false })
    return passed
  } catch {
    // A frozen error keeps its raw cause: it is not handed on, a masked summary of it is.
    return new StoreError(operation, { cause: summaryOf(passed) })
  }
}

/** Runs `call`, turning a failure into {@link asStoreError}'s error. */
export async function callStore<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (error) {
    throw asStoreError(operation, error)
  }
}
