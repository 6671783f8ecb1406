/**
 * The storage contract of usage control: rate-limit counters and credit balances. Every shipped store
 * implements {@link UsageStore} next to {@link KeyStore}; `limits.counters` may name another one (for
 * example Redis counters for keys kept in SQL).
 *
 * Stores apply the arithmetic below and nothing else: the KeyManager resolves policies, computes the
 * window and refill instants and turns the returned states into limit headers. Every instant is an
 * argument in epoch milliseconds; a store never reads the clock.
 */

import type { AuditRecord, AuditStore } from '../audit/audit-store.js'
import { constantTimeEqual } from '../crypto/constant-time.js'
import type { StoredKey } from '../store.js'

/**
 * How a rate counter counts.
 *
 * - `token-bucket`: the state is `{ value: tokens, at: last refill instant }`. A missing state is a
 *   full bucket. Refill first: `value = min(capacity, value + (now - at) * limit / windowMs)` and
 *   `at = now` (only when `now > at`). A request passes when `value >= cost`; it then takes `cost`.
 * - `fixed-window`: the state is `{ value: count, at: window start }`, windows aligned to the epoch:
 *   `start = now - (now % windowMs)`. A missing state, or one whose `at` is before `start`, counts 0
 *   from `start`. A request passes when `value + cost <= limit`; it then adds `cost`.
 *
 * @example
 * ```ts
 * import type { RateAlgorithm } from 'keywarden'
 *
 * const algorithm: RateAlgorithm = 'fixed-window' // "1000 a day" resets at midnight UTC
 * ```
 */
export type RateAlgorithm = 'token-bucket' | 'fixed-window'

/**
 * One rate counter a request is checked against, as the KeyManager hands it to the store.
 *
 * @example
 * ```ts
 * import type { RateCounter } from 'keywarden'
 *
 * const burst: RateCounter = { id: 'rate:free:burst:key:5hJ2kQ9xWmTz3LbN', algorithm: 'token-bucket', limit: 10, capacity: 10, windowMs: 1000 }
 * ```
 */
export interface RateCounter {
  /** The counter's identity, at most 600 characters; keys sharing a counter send the same ID. */
  readonly id: string
  /** How it counts. */
  readonly algorithm: RateAlgorithm
  /** Requests per window: the refill of a token bucket, the maximum of a fixed window. A positive integer. */
  readonly limit: number
  /** A token bucket's size (its burst); equals `limit` for a fixed window. A positive integer. */
  readonly capacity: number
  /** The window length in milliseconds, a positive integer. */
  readonly windowMs: number
}

/**
 * The stored state of a rate counter (see {@link RateAlgorithm} for what `value` and `at` mean).
 *
 * @example
 * ```ts
 * import type { CounterState } from 'keywarden'
 *
 * const halfFull: CounterState = { value: 5, at: Date.now() } // a token bucket holding 5 tokens
 * ```
 */
export interface CounterState {
  /** Tokens left (token bucket, may be fractional) or requests counted (fixed window). */
  readonly value: number
  /** Last refill instant (token bucket) or window start (fixed window), epoch ms. */
  readonly at: number
}

/**
 * A credit balance a request is charged to: one key's own, or a pool shared by an owner or a tenant.
 *
 * A missing balance starts at `initial` (stamped with `refill.periodStart` when there is a refill).
 * With a refill, a balance last refilled before `refill.periodStart` (or never) is restored to
 * `refill.amount` and stamped `periodStart` before anything else happens.
 *
 * @example
 * ```ts
 * import type { CreditPool } from 'keywarden'
 *
 * const monthly: CreditPool = { id: 'credits:owner:t1:u1', initial: 10_000, refill: { amount: 10_000, periodStart: Date.UTC(2026, 11, 1) } }
 * ```
 */
export interface CreditPool {
  /** The balance's identity, at most 600 characters. */
  readonly id: string
  /** The balance of a pool that has no stored state yet, an integer >= 0. */
  readonly initial: number
  /** The current refill period, or `null` when the balance never refills. */
  readonly refill: {
    /** The balance a refill restores, an integer >= 0. */
    readonly amount: number
    /** Start of the refill period `now` falls in, epoch ms. */
    readonly periodStart: number
  } | null
}

/**
 * The stored state of a credit balance.
 *
 * @example
 * ```ts
 * import type { CreditState } from 'keywarden'
 *
 * const state: CreditState = { remaining: 420, refilledAt: Date.UTC(2026, 11, 1) }
 * ```
 */
export interface CreditState {
  /** Credits left, an integer >= 0. */
  readonly remaining: number
  /** The refill period the balance was last restored for, epoch ms; `null` if never refilled. */
  readonly refilledAt: number | null
}

/**
 * One consumption: check every rate counter, then the credit balance, as one atomic step.
 *
 * @example
 * ```ts
 * import type { UsageRequest } from 'keywarden'
 * import type { UsageStore } from 'keywarden'
 *
 * declare const store: UsageStore
 * const request: UsageRequest = {
 *   now: Date.now(),
 *   cost: 1,
 *   commit: true,
 *   rate: [{ id: 'rate:pro:minute:key:5hJ2kQ9xWmTz3LbN', algorithm: 'token-bucket', limit: 6000, capacity: 6000, windowMs: 60_000 }],
 *   credits: null,
 * }
 * const outcome = await store.consumeUsage(request)
 * ```
 */
export interface UsageRequest {
  /** The instant of the request, epoch ms. */
  readonly now: number
  /** What the request weighs, an integer >= 0; 0 checks without spending. */
  readonly cost: number
  /** `false`: evaluate only, write nothing. */
  readonly commit: boolean
  /** The counters, in policy order; possibly empty. */
  readonly rate: readonly RateCounter[]
  /** The balance to charge, or `null`. */
  readonly credits: CreditPool | null
}

/**
 * What a consumption found and did.
 *
 * - Any counter short (`token-bucket`: `value < cost`; `fixed-window`: `value + cost > limit`):
 *   `refused: 'rate_limited'`, nothing is written (no counter moves, no credit is spent).
 * - Else, when the balance (after its refill) is below `cost`: `refused: 'usage_exceeded'`; the
 *   counters still take `cost` (the request passed them), the balance is not written.
 * - Else `refused: null`: every counter takes `cost` and the balance loses `cost`.
 *
 * With `commit: false` the same decision is made and the same states returned, and nothing is written.
 *
 * @example
 * ```ts
 * import type { UsageOutcome } from 'keywarden'
 *
 * declare const outcome: UsageOutcome
 * if (outcome.refused === 'rate_limited') console.info('slow down')
 * ```
 */
export interface UsageOutcome {
  /** Why the request was refused, or `null` when it passed. */
  readonly refused: 'rate_limited' | 'usage_exceeded' | null
  /** Per counter of the request, same order: its state after this request (refilled, and charged if it was). */
  readonly rate: readonly CounterState[]
  /** The balance, when the request named one. */
  readonly credits: {
    /** The stored balance before this request (before any refill); `initial` when none was stored. */
    readonly previous: number
    /** The balance after this request: refilled, and charged if it passed. */
    readonly remaining: number
  } | null
}

/**
 * A management change of a balance: `set` it, or `add` to it (negative amounts debit, never below 0;
 * the balance never passes `Number.MAX_SAFE_INTEGER`).
 * The pool's refill applies first, as in {@link UsageRequest}.
 *
 * @example
 * ```ts
 * import type { CreditAdjustment } from 'keywarden'
 * import type { UsageStore } from 'keywarden'
 *
 * declare const store: UsageStore
 * const topUp: CreditAdjustment = { pool: { id: 'credits:key:5hJ2kQ9xWmTz3LbN', initial: 0, refill: null }, now: Date.now(), mode: 'add', amount: 1000 }
 * const { previous, remaining } = await store.adjustCredits(topUp)
 * ```
 */
export interface CreditAdjustment {
  /** The balance to change. */
  readonly pool: CreditPool
  /** The instant of the change, epoch ms. */
  readonly now: number
  /**
   * `set`: the balance becomes `max(0, amount)`; `add`: it becomes `max(0, remaining + amount)`. Either
   * way it is at most `Number.MAX_SAFE_INTEGER`: a top-up past it saturates there, inside the store's
   * atomic step, so concurrent top-ups can never leave a rounded balance.
   */
  readonly mode: 'set' | 'add'
  /** A safe integer. */
  readonly amount: number
  /**
   * For an {@link AuditStore}: the audit entry to write in the same atomic step, with `changes` set by
   * the store to `{ credits: { from: previous, to: remaining } }`. Other stores ignore it.
   */
  readonly audit?: Omit<AuditRecord, 'changes'>
}

/**
 * A balance before and after a {@link CreditAdjustment}.
 *
 * @example
 * ```ts
 * import type { CreditsAdjusted } from 'keywarden'
 *
 * const change: CreditsAdjusted = { previous: 0, remaining: 1000 }
 * ```
 */
export interface CreditsAdjusted {
  /** The stored balance before the change (before any refill); the pool's `initial` when none was stored. */
  readonly previous: number
  /** The balance now. */
  readonly remaining: number
}

/**
 * A consumption guarded by what the KeyManager last saw of a key, so a store holding both the key and
 * its counters can read and charge in one round trip. The store applies the request (as
 * {@link UsageStore.consumeUsage} would) only when the stored record with ID `keyId`:
 * has `version` equal to `version`; is not revoked, is enabled and, at `now`, not expired; and its
 * `hash` equals `hash`, or its `previousHash` does while `now < previousHashExpiresAt`. Compare the
 * hashes in constant time. Otherwise it writes nothing and returns the record as stored (or `null`).
 *
 * @example
 * ```ts
 * import type { GuardedUsageRequest, UsageStore } from 'keywarden'
 *
 * declare const store: Required<UsageStore>
 * declare const request: GuardedUsageRequest
 * const answer = await store.consumeIfCurrent(request)
 * if (!answer.applied) console.info('the key changed since it was last seen', answer.record?.version)
 * ```
 */
export interface GuardedUsageRequest extends UsageRequest {
  /** The key whose record guards the consumption. */
  readonly keyId: string
  /** The record version the request was planned from. */
  readonly version: number
  /** The keyed hash of the presented secret, under the current pepper. */
  readonly hash: string
}

/**
 * The answer to a {@link GuardedUsageRequest}: applied (with the outcome and the stored `lastUsedAt`),
 * or not (with the record as stored, for the KeyManager to decide from).
 *
 * @example
 * ```ts
 * import type { GuardedUsageOutcome } from 'keywarden'
 *
 * declare const answer: GuardedUsageOutcome
 * const refused = answer.applied && answer.outcome.refused !== null
 * ```
 */
export type GuardedUsageOutcome =
  | {
      /** The guard held and the request was applied. */
      readonly applied: true
      /** As {@link UsageStore.consumeUsage} returns it. */
      readonly outcome: UsageOutcome
      /** The record's stored `lastUsedAt`. */
      readonly lastUsedAt: number | null
    }
  | {
      /** The guard did not hold; nothing was written. */
      readonly applied: false
      /** The record as stored, or `null` when there is none. */
      readonly record: StoredKey | null
    }

/**
 * Whether a stored record passes the guard of a {@link GuardedUsageRequest}, comparing hashes in
 * constant time: the check every store's `consumeIfCurrent` makes (the Redis script repeats it).
 *
 * @example
 * ```ts
 * import { guardHolds, type GuardedUsageRequest, type StoredKey } from 'keywarden'
 *
 * declare const record: StoredKey | null
 * declare const request: GuardedUsageRequest
 * if (record !== null && guardHolds(record, request)) {
 *   // charge the counters, in the same atomic step as the read
 * }
 * ```
 */
export function guardHolds(record: StoredKey, request: GuardedUsageRequest): boolean {
  const { now, hash, version } = request
  if (record.version !== version || record.revokedAt !== null || !record.enabled) return false
  if (record.expiresAt !== null && now >= record.expiresAt) return false
  const current = constantTimeEqual(record.hash, hash)
  const previous = record.previousHash !== null && record.previousHashExpiresAt !== null && now < record.previousHashExpiresAt && constantTimeEqual(record.previousHash, hash)
  return current || previous
}

/**
 * Where rate counters and credit balances live. Every shipped store implements it; the conformance
 * suite (`keywarden/testing`) proves each one, including under concurrency.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { PostgresStore } from 'keywarden/adapters/sql'
 * import { RedisStore } from 'keywarden/adapters/redis'
 *
 * // Keys in PostgreSQL, counters in Redis:
 * const keys = new KeyManager({
 *   store: new PostgresStore({ pool }),
 *   limits: { policies: { free: { rate: [{ name: 'burst', limit: 10, window: '1s' }] } }, counters: new RedisStore({ client: redis }) },
 * })
 * ```
 */
export interface UsageStore {
  /** Applies one {@link UsageRequest} atomically (see {@link UsageOutcome}). Rejects only for store failures. */
  consumeUsage(request: UsageRequest): Promise<UsageOutcome>
  /** Applies one {@link CreditAdjustment} atomically. Rejects only for store failures. */
  adjustCredits(change: CreditAdjustment): Promise<CreditsAdjusted>
  /**
   * Deletes counter states that no longer matter at `now` (full buckets, past windows), so storage
   * stays bounded; returns how many went. Credit balances are kept. Stores with native expiry
   * (Redis TTLs) may leave it out.
   */
  purgeUsage?(now: number): Promise<number>
  /**
   * Optional, for stores that hold the keys too: a {@link GuardedUsageRequest} read-and-charge in one
   * round trip. The KeyManager uses it when the key store is also the counter store and no
   * verification cache is configured.
   */
  consumeIfCurrent?(request: GuardedUsageRequest): Promise<GuardedUsageOutcome>
}

/**
 * Whether `store` implements {@link UsageStore}.
 *
 * @example
 * ```ts
 * import { isUsageStore } from 'keywarden'
 *
 * if (!isUsageStore(store)) throw new Error('this store keeps no counters')
 * ```
 */
export function isUsageStore(store: unknown): store is UsageStore {
  return (
    typeof store === 'object' &&
    store !== null &&
    typeof (store as UsageStore).consumeUsage === 'function' &&
    typeof (store as UsageStore).adjustCredits === 'function'
  )
}
