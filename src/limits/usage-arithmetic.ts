/**
 * The arithmetic of {@link UsageStore}, in one place: stores that run code inside their own atomic
 * step (memory, SQL transactions) call these; the Redis scripts repeat them operation for operation,
 * so every store returns the same numbers.
 */
import type { CounterState, CreditAdjustment, CreditPool, CreditState, RateCounter, UsageOutcome, UsageRequest } from './usage-store.js'

/**
 * A counter state to write, with the instant after which it no longer matters (full, or window over).
 *
 * @example
 * ```ts
 * import type { CounterWrite } from 'keywarden'
 *
 * declare const db: { upsertCounter(id: string, value: number, at: number, expiresAt: number): void }
 * const save = (write: CounterWrite) => db.upsertCounter(write.id, write.state.value, write.state.at, write.expiresAt)
 * ```
 */
export interface CounterWrite {
  /** The counter's ID. */
  readonly id: string
  /** Its new state. */
  readonly state: CounterState
  /** When the state stops mattering (a bucket full again, a window over), epoch ms: a TTL or purge bound. */
  readonly expiresAt: number
}

/**
 * What a store writes for one consumption: nothing, some counters, a balance, or both.
 *
 * @example
 * ```ts
 * import type { UsageWrites } from 'keywarden'
 *
 * declare const writes: UsageWrites
 * const nothingToWrite = writes.counters.length === 0 && writes.credits === null
 * ```
 */
export interface UsageWrites {
  /** Counter states to write (empty for a refusal by rate and for dry runs). */
  readonly counters: readonly CounterWrite[]
  /** The balance to write under the request's pool ID, or `null`. */
  readonly credits: CreditState | null
}

/** A counter's state at `now` before this request: a token bucket refilled, a fixed window rolled over. */
export function currentCounter(counter: RateCounter, stored: CounterState | null, now: number): CounterState {
  if (counter.algorithm === 'fixed-window') {
    const start = now - (now % counter.windowMs)
    // A state stamped with a later window (another instance's clock runs ahead) is kept: never more room.
    return stored === null || stored.at < start ? { value: 0, at: start } : stored
  }
  if (stored === null) return { value: counter.capacity, at: now }
  if (now <= stored.at) return stored
  return { value: Math.min(counter.capacity, stored.value + ((now - stored.at) * counter.limit) / counter.windowMs), at: now }
}

/** Whether the counter has room for `cost`. */
export function counterAllows(counter: Pick<RateCounter, 'algorithm' | 'limit'>, state: CounterState, cost: number): boolean {
  return counter.algorithm === 'fixed-window' ? state.value + cost <= counter.limit : state.value >= cost
}

/** The state after charging `cost`. */
export function chargeCounter(counter: RateCounter, state: CounterState, cost: number): CounterState {
  return { value: counter.algorithm === 'fixed-window' ? state.value + cost : state.value - cost, at: state.at }
}

/** When the state stops mattering: a bucket is full again, a window is over. Always after `state.at`. */
export function counterExpiresAt(counter: RateCounter, state: CounterState): number {
  if (counter.algorithm === 'fixed-window') return state.at + counter.windowMs
  return state.at + Math.max(1, Math.ceil(((counter.capacity - state.value) * counter.windowMs) / counter.limit))
}

/** A balance at `now` before this request: the initial one when none is stored, refilled when due. */
export function currentCredits(pool: CreditPool, stored: CreditState | null): CreditState {
  if (stored === null) return { remaining: pool.initial, refilledAt: pool.refill?.periodStart ?? null }
  if (pool.refill !== null && (stored.refilledAt === null || stored.refilledAt < pool.refill.periodStart)) {
    return { remaining: pool.refill.amount, refilledAt: pool.refill.periodStart }
  }
  return stored
}

/**
 * Decides one {@link UsageRequest} from the stored states (in the request's counter order, `null`
 * where none is stored) and says what to write. With `commit: false` the writes are empty. A custom
 * {@link UsageStore} calls it inside its own atomic step (a transaction holding the rows' locks).
 *
 * @example
 * ```ts
 * import { applyUsage, type UsageRequest } from 'keywarden'
 *
 * declare const tx: { lockCounters(ids: string[]): any[]; lockBalance(id: string): any; save(writes: object): void }
 * function consumeInTransaction(request: UsageRequest) {
 *   const counters = tx.lockCounters(request.rate.map((counter) => counter.id))
 *   const balance = request.credits === null ? null : tx.lockBalance(request.credits.id)
 *   const { outcome, writes } = applyUsage(request, counters, balance)
 *   tx.save(writes)
 *   return outcome
 * }
 * ```
 */
export function applyUsage(
  request: UsageRequest,
  storedCounters: readonly (CounterState | null)[],
  storedCredits: CreditState | null,
): {
  /** What the store returns. */
  readonly outcome: UsageOutcome
  /** What the store writes, in the same atomic step. */
  readonly writes: UsageWrites
} {
  const { now, cost, rate, credits: pool, commit } = request
  const states = rate.map((counter, index) => currentCounter(counter, storedCounters[index] ?? null, now))
  const balance = pool === null ? null : currentCredits(pool, storedCredits)
  const previous = pool === null ? 0 : (storedCredits?.remaining ?? pool.initial)

  if (!rate.every((counter, index) => counterAllows(counter, states[index]!, cost))) {
    const credits = balance === null ? null : { previous, remaining: balance.remaining }
    return { outcome: { refused: 'rate_limited', rate: states, credits }, writes: NO_WRITES }
  }
  const charged = rate.map((counter, index) => chargeCounter(counter, states[index]!, cost))
  const counterWrites = commit ? rate.map((counter, index) => ({ id: counter.id, state: charged[index]!, expiresAt: counterExpiresAt(counter, charged[index]!) })) : []
  if (balance === null) {
    return { outcome: { refused: null, rate: charged, credits: null }, writes: { counters: counterWrites, credits: null } }
  }
  if (balance.remaining < cost) {
    return {
      outcome: { refused: 'usage_exceeded', rate: charged, credits: { previous, remaining: balance.remaining } },
      writes: { counters: counterWrites, credits: null },
    }
  }
  const after = { remaining: balance.remaining - cost, refilledAt: balance.refilledAt }
  return {
    outcome: { refused: null, rate: charged, credits: { previous, remaining: after.remaining } },
    writes: { counters: counterWrites, credits: commit ? after : null },
  }
}

/**
 * Applies one {@link CreditAdjustment} to the stored balance: the state to write and the previous
 * balance to return. The new balance stays within 0 and `Number.MAX_SAFE_INTEGER` (a top-up past it
 * saturates there, so every balance is an exact integer). For custom stores, inside their own atomic step.
 *
 * @example
 * ```ts
 * import { applyCreditAdjustment, type CreditAdjustment, type CreditState } from 'keywarden'
 *
 * declare const stored: CreditState | null
 * declare const change: CreditAdjustment
 * const { state, previous } = applyCreditAdjustment(change, stored)
 * ```
 */
export function applyCreditAdjustment(
  change: CreditAdjustment,
  stored: CreditState | null,
): {
  /** The balance to write. */
  readonly state: CreditState
  /** The balance before the change (the pool's `initial` when none was stored). */
  readonly previous: number
} {
  const balance = currentCredits(change.pool, stored)
  // Bounded on both sides inside the store's atomic step: a balance past 2^53 - 1 would round, and a
  // read-then-check before the call cannot stop two concurrent top-ups from passing it together.
  const unbounded = change.mode === 'set' ? change.amount : balance.remaining + change.amount
  const remaining = Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, unbounded))
  return { state: { remaining, refilledAt: balance.refilledAt }, previous: stored?.remaining ?? change.pool.initial }
}

const NO_WRITES: UsageWrites = Object.freeze({ counters: Object.freeze([]), credits: null })
