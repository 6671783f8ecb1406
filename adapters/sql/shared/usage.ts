/**
 * Rate counters and credit balances in the usage table (`<table>_usage`): the transaction bodies of
 * `consumeUsage`, `consumeIfCurrent` and `adjustCredits`. They lock and read the rows, let
 * src/limits/usage-arithmetic.ts decide, and write what it returns. The one exception is
 * PostgreSQL's consume function (postgres/dialect.ts), which repeats that arithmetic on the server;
 * {@link readConsumed} reads its answer.
 */
import { applyCreditAdjustment, applyUsage, type UsageWrites } from '../../../src/limits/usage-arithmetic.js'
import {
  guardHolds,
  type CounterState,
  type CreditAdjustment,
  type CreditState,
  type CreditsAdjusted,
  type GuardedUsageOutcome,
  type GuardedUsageRequest,
  type UsageOutcome,
  type UsageRequest,
} from '../../../src/limits/usage-store.js'
import type { StoredKey } from '../../../src/store.js'
import { readNullableInteger, readNumber, readText, rowToRecord } from './row-mapping.js'
import type { SqlRow, SqlStatement, TransactionSteps, UsageKey, UsageKind, UsageRow, UsageStatements } from './seams.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * The key a row is matched by. IDs travel to the database as UTF-8, so an ID with a lone surrogate comes
 * back with U+FFFD in its place: matching on the UTF-8 form finds the row it was stored as.
 */
function mapKey(kind: UsageKind, id: string): string {
  return `${kind}\u0000${decoder.decode(encoder.encode(id))}`
}

/** The stored rows of one read, by kind and ID. */
class StoredRows {
  readonly #rows = new Map<string, { value: number; at: number | null }>()

  constructor(rows: readonly SqlRow[]) {
    for (const row of rows) {
      this.#rows.set(mapKey(readText(row['kind']) as UsageKind, readText(row['id'])), { value: readNumber(row['value']), at: readNullableInteger(row['at']) })
    }
  }

  has(key: UsageKey): boolean {
    return this.#rows.has(mapKey(key.kind, key.id))
  }

  counter(id: string): CounterState | null {
    const row = this.#rows.get(mapKey('rate', id))
    // A counter row always has its instant; one without is unreadable, so it counts as absent.
    return row === undefined || row.at === null ? null : { value: row.value, at: row.at }
  }

  balance(id: string): CreditState | null {
    const row = this.#rows.get(mapKey('credits', id))
    return row === undefined ? null : { remaining: row.value, refilledAt: row.at }
  }
}

/** Every row a request reads: its counters (each once) and its balance. */
export function usageKeys(request: UsageRequest): UsageKey[] {
  const keys = new Map<string, UsageKey>()
  for (const counter of request.rate) keys.set(mapKey('rate', counter.id), { kind: 'rate', id: counter.id })
  if (request.credits !== null) keys.set(mapKey('credits', request.credits.id), { kind: 'credits', id: request.credits.id })
  return [...keys.values()]
}

/** The rows to write for `writes`; a counter named twice in one request is written once, with its last state. */
function rowsOf(request: UsageRequest, writes: UsageWrites): UsageRow[] {
  const rows = new Map<string, UsageRow>()
  for (const { id, state, expiresAt } of writes.counters) rows.set(mapKey('rate', id), { kind: 'rate', id, value: state.value, at: state.at, expiresAt })
  if (writes.credits !== null && request.credits !== null) {
    const { id } = request.credits
    rows.set(mapKey('credits', id), { kind: 'credits', id, value: writes.credits.remaining, at: writes.credits.refilledAt, expiresAt: null })
  }
  return [...rows.values()]
}

/**
 * Thrown inside a usage transaction to roll it back and run it again: with `absent`, as the second
 * transaction of a dialect whose locking reads of absent rows lock gaps (see
 * {@link UsageStatements.absentRowsLockGaps}); with `null`, from the start.
 */
export class RunAgain extends Error {
  constructor(readonly absent: readonly UsageKey[] | null) {
    super('The usage transaction runs again')
  }
}

/**
 * Locks and reads the rows of `keys`. First (`absent` null) with one locking read of them all. Where
 * a locking read of an absent row locks a gap, the run after one that found rows absent lock-reads only
 * the rows that existed, and reads the absent ones without a lock: still absent, they are inserted
 * later with no gap lock held; present by now, the transaction runs again from the start.
 */
function* lockAndRead(statements: UsageStatements, keys: readonly UsageKey[], absent: readonly UsageKey[] | null): TransactionSteps<StoredRows> {
  if (absent === null) return new StoredRows((yield statements.read(keys, true)).rows)
  const missing = new Set(absent.map((key) => mapKey(key.kind, key.id)))
  const existing = keys.filter((key) => !missing.has(mapKey(key.kind, key.id)))
  const locked = existing.length > 0 ? (yield statements.read(existing, true)).rows : []
  // At REPEATABLE READ this first plain read takes the snapshot, after the locks were granted.
  if ((yield statements.read(absent, false)).rows.length > 0) throw new RunAgain(null)
  return new StoredRows(locked)
}

/** Updates the rows that were read (and are locked), inserts the others. */
function* writeRows(
  statements: UsageStatements,
  keys: readonly UsageKey[],
  stored: StoredRows,
  firstRun: boolean,
  rows: readonly UsageRow[],
): TransactionSteps<void> {
  const existing = rows.filter((row) => stored.has(row))
  const fresh = rows.filter((row) => !stored.has(row))
  // Inserting while holding the gap locks of the first read would deadlock with every transaction
  // holding the same gaps: roll back, and insert from a transaction that holds none.
  if (fresh.length > 0 && firstRun && statements.absentRowsLockGaps) throw new RunAgain(keys.filter((key) => !stored.has(key)))
  if (existing.length > 0) for (const statement of statements.update(existing)) yield statement
  // A row that was absent may have been inserted by a concurrent transaction since: the insert then
  // fails with a unique violation, and the whole consumption runs again, finding the row.
  if (fresh.length > 0) yield statements.insert(fresh)
}

/** Decides `request` from the rows of an unlocked read (a dry run: nothing is written). */
export function evaluateUsage(request: UsageRequest, rows: readonly SqlRow[]): UsageOutcome {
  const stored = new StoredRows(rows)
  return applyUsage(request, request.rate.map((counter) => stored.counter(counter.id)), request.credits === null ? null : stored.balance(request.credits.id)).outcome
}

/** One committed consumption: lock and read every row, decide, write. `absent`: see {@link RunAgain}. */
export function* consumeSteps(
  statements: UsageStatements,
  request: UsageRequest,
  keys: readonly UsageKey[],
  absent: readonly UsageKey[] | null,
): TransactionSteps<UsageOutcome> {
  const stored = yield* lockAndRead(statements, keys, absent)
  const { outcome, writes } = applyUsage(
    request,
    request.rate.map((counter) => stored.counter(counter.id)),
    request.credits === null ? null : stored.balance(request.credits.id),
  )
  yield* writeRows(statements, keys, stored, absent === null, rowsOf(request, writes))
  return outcome
}

/** One credit adjustment: lock and read the balance, change it, write it. `absent`: see {@link RunAgain}. */
export function* adjustSteps(statements: UsageStatements, change: CreditAdjustment, absent: readonly UsageKey[] | null): TransactionSteps<CreditsAdjusted> {
  const key: UsageKey = { kind: 'credits', id: change.pool.id }
  const stored = yield* lockAndRead(statements, [key], absent)
  const { state, previous } = applyCreditAdjustment(change, stored.balance(change.pool.id))
  yield* writeRows(statements, [key], stored, absent === null, [{ ...key, value: state.remaining, at: state.refilledAt, expiresAt: null }])
  return { previous, remaining: state.remaining }
}

/** The guard checked on the key row as read: held (with the row's `lastUsedAt`), or not (with the row as `get` maps it). */
function guardedOutcome(row: SqlRow | undefined, request: GuardedUsageRequest): { applied: false; record: StoredKey | null } | { applied: true; lastUsedAt: number | null } {
  const record = row === undefined ? null : rowToRecord(row)
  if (record === null || !guardHolds(record, request)) return { applied: false, record }
  return { applied: true, lastUsedAt: record.lastUsedAt }
}

/**
 * One committed guarded consumption (`consumeIfCurrent`) as a transaction: reads the key row with
 * `keyRead` (which locks it against changes until the end), checks the guard on it, and only then
 * locks, decides and writes as {@link consumeSteps}. A failed guard writes nothing and answers the row
 * as `get` maps it.
 */
export function* guardedSteps(
  keyRead: SqlStatement,
  statements: UsageStatements,
  request: GuardedUsageRequest,
  keys: readonly UsageKey[],
  absent: readonly UsageKey[] | null,
): TransactionSteps<GuardedUsageOutcome> {
  const guard = guardedOutcome((yield keyRead).rows[0], request)
  if (!guard.applied) return guard
  const outcome = keys.length === 0 ? applyUsage(request, [], null).outcome : yield* consumeSteps(statements, request, keys, absent)
  return { applied: true, outcome, lastUsedAt: guard.lastUsedAt }
}

/**
 * A guarded dry run (`commit: false`): the key row, then the usage rows, each read without a lock;
 * nothing is written, so nothing needs to hold still between the two reads.
 */
export async function evaluateGuarded(
  execute: (statement: SqlStatement) => Promise<{ readonly rows: readonly SqlRow[] }>,
  keyRead: SqlStatement,
  statements: UsageStatements,
  request: GuardedUsageRequest,
  keys: readonly UsageKey[],
): Promise<GuardedUsageOutcome> {
  const guard = guardedOutcome((await execute(keyRead)).rows[0], request)
  if (!guard.applied) return guard
  const outcome = keys.length === 0 ? applyUsage(request, [], null).outcome : evaluateUsage(request, (await execute(statements.read(keys, false))).rows)
  return { applied: true, outcome, lastUsedAt: guard.lastUsedAt }
}

/** The columns a one-statement consumption ({@link UsageStatements.consume}) answers, in order. */
export const CONSUME_COLUMNS = ['applied', 'key_row', 'refused', 'rate_value', 'rate_at', 'credits_previous', 'credits_remaining', 'key_last_used_at'] as const

/** An array column: pg parses arrays of numbers; an unparsed `{1,2.5}` literal is read too. */
function readArray(value: unknown): readonly unknown[] {
  if (Array.isArray(value)) return value
  if (typeof value === 'string' && value.startsWith('{') && value.endsWith('}')) return value.length === 2 ? [] : value.slice(1, -1).split(',')
  throw new TypeError('Expected an array column')
}

function readInstant(value: unknown): number {
  const instant = readNullableInteger(value)
  if (instant === null) throw new TypeError('Expected an instant per counter')
  return instant
}

function readRefused(value: unknown): UsageOutcome['refused'] {
  if (value === null || value === undefined) return null
  if (value === 'rate_limited' || value === 'usage_exceeded') return value
  throw new TypeError('Expected a refusal reason')
}

/**
 * The answer of a one-statement consumption (see {@link CONSUME_COLUMNS}), as `consumeIfCurrent`
 * returns it: applied, with the outcome in the request's counter order; or not, with the key row
 * (JSON of its columns, mapped as `get` maps a row) or `null` when there is none.
 */
export function readConsumed(row: SqlRow | undefined, request: UsageRequest): GuardedUsageOutcome {
  if (row === undefined) throw new TypeError('The consume function answered no row')
  if (row['applied'] !== true) {
    const keyRow = row['key_row']
    if (keyRow === null || keyRow === undefined) return { applied: false, record: null }
    return { applied: false, record: rowToRecord((typeof keyRow === 'string' ? JSON.parse(keyRow) : keyRow) as SqlRow) }
  }
  const values = readArray(row['rate_value'])
  const instants = readArray(row['rate_at'])
  if (values.length !== request.rate.length || instants.length !== request.rate.length) throw new TypeError('Expected a state per counter')
  const rate = values.map((value, index): CounterState => ({ value: readNumber(value), at: readInstant(instants[index]) }))
  const credits = request.credits === null ? null : { previous: readNumber(row['credits_previous']), remaining: readNumber(row['credits_remaining']) }
  return { applied: true, outcome: { refused: readRefused(row['refused']), rate, credits }, lastUsedAt: readNullableInteger(row['key_last_used_at']) }
}
