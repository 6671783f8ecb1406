/**
 * Rate counters and credit balances in the usage table (`<table>_usage`): the transaction bodies of
 * `consumeUsage` and `adjustCredits`. They lock and read the rows, let src/limits/usage-arithmetic.ts
 * decide, and write what it returns; no arithmetic happens in SQL.
 */
import { applyCreditAdjustment, applyUsage, type UsageWrites } from '../../../src/limits/usage-arithmetic.js'
import type { CounterState, CreditAdjustment, CreditState, CreditsAdjusted, UsageOutcome, UsageRequest } from '../../../src/limits/usage-store.js'
import { readNullableInteger, readNumber, readText } from './row-mapping.js'
import type { SqlRow, TransactionSteps, UsageKey, UsageKind, UsageRow, UsageStatements } from './seams.js'

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

/** Updates the rows that were read (and are locked), inserts the others. */
function* writeRows(statements: UsageStatements, stored: StoredRows, rows: readonly UsageRow[]): TransactionSteps<void> {
  const existing = rows.filter((row) => stored.has(row))
  const fresh = rows.filter((row) => !stored.has(row))
  if (existing.length > 0) for (const statement of statements.update(existing)) yield statement
  // A row that was absent may have been inserted by a concurrent transaction since: the insert then
  // fails (unique violation, or a deadlock on MySQL's gap locks), and the whole consumption runs again.
  if (fresh.length > 0) yield statements.insert(fresh)
}

/** Decides `request` from the rows of an unlocked read (a dry run: nothing is written). */
export function evaluateUsage(request: UsageRequest, rows: readonly SqlRow[]): UsageOutcome {
  const stored = new StoredRows(rows)
  return applyUsage(request, request.rate.map((counter) => stored.counter(counter.id)), request.credits === null ? null : stored.balance(request.credits.id)).outcome
}

/** One committed consumption: lock and read every row, decide, write. */
export function* consumeSteps(statements: UsageStatements, request: UsageRequest, keys: readonly UsageKey[]): TransactionSteps<UsageOutcome> {
  const stored = new StoredRows((yield statements.read(keys, true)).rows)
  const { outcome, writes } = applyUsage(
    request,
    request.rate.map((counter) => stored.counter(counter.id)),
    request.credits === null ? null : stored.balance(request.credits.id),
  )
  yield* writeRows(statements, stored, rowsOf(request, writes))
  return outcome
}

/** One credit adjustment: lock and read the balance, change it, write it. */
export function* adjustSteps(statements: UsageStatements, change: CreditAdjustment): TransactionSteps<CreditsAdjusted> {
  const key: UsageKey = { kind: 'credits', id: change.pool.id }
  const stored = new StoredRows((yield statements.read([key], true)).rows)
  const { state, previous } = applyCreditAdjustment(change, stored.balance(change.pool.id))
  yield* writeRows(statements, stored, [{ ...key, value: state.remaining, at: state.refilledAt, expiresAt: null }])
  return { previous, remaining: state.remaining }
}
