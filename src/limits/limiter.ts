/**
 * Usage control at verify time: which policy a key follows, which counters and balance that means,
 * one atomic consumption in the counter store, and the answer in public terms. Keys with no policy and
 * no credits of their own never reach the store.
 */
import type { StoredKey } from '../store.js'
import { asStoreError } from '../store-failure.js'
import type { ApiKey } from '../types.js'
import { countersOf, type CompiledCredits, type CompiledPolicy, type CompiledRule, type LimitScope, type ResolvedLimits } from './config.js'
import { counterAllows } from './usage-arithmetic.js'
import { limitState, waitFor, type CreditBalance, type LimitState } from './limit-state.js'
import { refillPeriod } from './refill.js'
import { balanceId, counterId, effectiveScope, type UsageSubject } from './usage-ids.js'
import type { CreditPool, RateCounter, UsageOutcome, UsageRequest } from './usage-store.js'

/** The counters and balance one key uses at one instant. */
export interface UsagePlan {
  readonly policy: CompiledPolicy | null
  readonly counters: readonly RateCounter[]
  readonly pool: CreditPool | null
  /** When the pool next refills, epoch ms; `null` when it never does. */
  readonly refillAt: number | null
  /** Who shares the pool (after fallbacks), when there is one. */
  readonly poolScope: LimitScope | null
}

/** What a consumption decided, in public terms. */
export interface UsageDecision {
  readonly refused: 'rate_limited' | 'usage_exceeded' | null
  readonly limits: readonly LimitState[]
  readonly credits: CreditBalance | null
  /** Rate refusals: how long until the request would pass, ms. */
  readonly retryAfterMs: number
  /** Names of the rules (or `credits`) that refused the request. */
  readonly violated: readonly string[]
  /** The balance before and after, when this request changed it. */
  readonly creditChange: { readonly poolId: string; readonly previous: number; readonly remaining: number } | null
}

/** The balance a key is charged to: its rule, its ID, where interval refills count from, who shares it. */
export interface ChargedCredits {
  readonly rule: CompiledCredits
  readonly id: string
  readonly anchor: number
  readonly scope: LimitScope
}

/** The record-dependent part of a {@link UsagePlan}. */
interface PlanShape {
  readonly policy: CompiledPolicy | null
  readonly counters: readonly RateCounter[]
  readonly credits: ChargedCredits | null
}

export class Limiter {
  readonly #shapes = new WeakMap<StoredKey, PlanShape | null>()

  constructor(private readonly limits: ResolvedLimits) {}

  /** Whether a key with this stored record is limited at all (the cheap check of the hot path). */
  applies(record: StoredKey): boolean {
    return record.hasCredits === true || record.policy != null || this.limits.defaultPolicy !== null
  }

  /** The policy a key follows now: its own if still configured, else the default. */
  policyFor(record: StoredKey, key: () => ApiKey): CompiledPolicy | null {
    const { policies, defaultPolicy } = this.limits
    const own = record.policy == null ? undefined : policies.get(record.policy)
    if (own !== undefined) return own
    const name = typeof defaultPolicy === 'function' ? defaultPolicy(key()) : defaultPolicy
    if (name === null) return null
    const policy = policies.get(name)
    if (policy === undefined) throw new TypeError(`limits.defaultPolicy returned '${String(name)}', which names no configured policy`)
    return policy
  }

  /** The counters and balance of a key at `now`; `null` when nothing limits it. */
  plan(record: StoredKey, key: () => ApiKey, now: number): UsagePlan | null {
    const shape = this.#shapeOf(record, key)
    if (shape === null) return null
    const { policy, counters, credits } = shape
    const { pool, refillAt } = credits === null ? { pool: null, refillAt: null } : creditPool(credits.rule, credits.id, now, credits.anchor)
    return { policy, counters, pool, refillAt, poolScope: credits?.scope ?? null }
  }

  /**
   * What of a plan depends on the record alone (policy, counter IDs, balance), kept per record object:
   * records are immutable, and a store that hands out the same object (memory) skips rebuilding them.
   */
  #shapeOf(record: StoredKey, key: () => ApiKey): PlanShape | null {
    const known = this.#shapes.get(record)
    if (known !== undefined) return known
    const policy = this.policyFor(record, key)
    const credits = this.creditsFor(record, policy)
    const shape =
      (policy === null || policy.rate.length === 0) && credits === null
        ? null
        : { policy, counters: policy === null ? [] : policy.rate.map((rule) => counter(policy.name, rule, record)), credits }
    this.#shapes.set(record, shape)
    return shape
  }

  /** The pool a management call on `target` changes, with its refill. */
  poolFor(rule: CompiledCredits | null, id: string, now: number, anchor: number): { pool: CreditPool; refillAt: number | null } {
    return creditPool(rule ?? NO_CREDITS_RULE, id, now, anchor)
  }

  /** The store request of a plan. */
  request(plan: UsagePlan, cost: number, commit: boolean, now: number): UsageRequest {
    return { now, cost, commit, rate: plan.counters, credits: plan.pool }
  }

  /** Charges `cost` (or, with `commit: false`, only checks). Counter failures fail closed unless `failOpen` covers them. */
  async consume(plan: UsagePlan, cost: number, commit: boolean, now: number): Promise<UsageDecision> {
    const store = countersOf(this.limits, 'consumeUsage')
    let outcome: UsageOutcome
    try {
      outcome = await store.consumeUsage(this.request(plan, cost, commit, now))
    } catch (error) {
      const failure = asStoreError('consumeUsage', error)
      // Rate limits may fail open by choice; credits never do: an unknown balance is not a positive one.
      if (!this.limits.failOpen || plan.pool !== null) throw failure
      this.limits.onError(failure)
      return OPEN
    }
    return this.decide(plan, outcome, cost, commit, now)
  }

  /** A store outcome in public terms: limit states, the balance, why it was refused and how long to wait. */
  decide(plan: UsagePlan, outcome: UsageOutcome, cost: number, commit: boolean, now: number): UsageDecision {
    const rules = plan.policy?.rate ?? []
    const policyName = plan.policy?.name ?? ''
    const limits = rules.map((rule, index) => limitState(policyName, rule, outcome.rate[index]!, now))
    const credits = outcome.credits === null ? null : Object.freeze({ remaining: outcome.credits.remaining, refillAt: plan.refillAt === null ? null : new Date(plan.refillAt) })
    if (outcome.refused === 'rate_limited') {
      const violated: string[] = []
      let retryAfterMs = 0
      rules.forEach((rule, index) => {
        const state = outcome.rate[index]!
        if (counterAllows(rule, state, cost)) return
        violated.push(rule.name)
        retryAfterMs = Math.max(retryAfterMs, waitFor(rule, state, cost, now))
      })
      return { refused: 'rate_limited', limits, credits, retryAfterMs, violated, creditChange: null }
    }
    if (outcome.refused === 'usage_exceeded') {
      const retryAfterMs = plan.refillAt === null ? 0 : plan.refillAt - now
      return { refused: 'usage_exceeded', limits, credits, retryAfterMs, violated: ['credits'], creditChange: null }
    }
    const creditChange =
      outcome.credits !== null && commit && outcome.credits.previous !== outcome.credits.remaining
        ? { poolId: plan.pool!.id, previous: outcome.credits.previous, remaining: outcome.credits.remaining }
        : null
    return { refused: null, limits, credits, retryAfterMs: 0, violated: [], creditChange }
  }

  /** The credits rule and balance ID a key is charged to: its own balance first, else its policy's. */
  creditsFor(record: StoredKey, policy: CompiledPolicy | null): ChargedCredits | null {
    const rule = policy?.credits ?? null
    if (record.hasCredits === true) {
      // The key's own balance; the policy's refill applies only when the policy's credits are per key too.
      const own = rule !== null && rule.per === 'key' ? rule : NO_CREDITS_RULE
      return { rule: own, id: balanceId('key', record), anchor: record.createdAt, scope: 'key' }
    }
    if (rule === null) return null
    const per = effectiveScope(rule.per, record)
    return { rule, id: balanceId(per, record), anchor: per === 'key' ? record.createdAt : 0, scope: per }
  }
}

/** The balance of a key that has credits of its own but no policy credits: no refill, starts empty. */
const NO_CREDITS_RULE: CompiledCredits = Object.freeze({ initial: 0, refill: null, per: 'key' })

/** What a failed-open consumption answers: no limits known. */
const OPEN: UsageDecision = Object.freeze({ refused: null, limits: Object.freeze([]), credits: null, retryAfterMs: 0, violated: Object.freeze([]), creditChange: null })

function counter(policy: string, rule: CompiledRule, subject: UsageSubject): RateCounter {
  return { id: counterId(policy, rule.name, rule.per, subject), algorithm: rule.algorithm, limit: rule.limit, capacity: rule.capacity, windowMs: rule.windowMs }
}

function creditPool(rule: CompiledCredits, id: string, now: number, anchor: number): { pool: CreditPool; refillAt: number | null } {
  if (rule.refill === null) return { pool: { id, initial: rule.initial, refill: null }, refillAt: null }
  const period = refillPeriod(rule.refill, now, anchor)
  return { pool: { id, initial: rule.initial, refill: { amount: rule.refill.amount, periodStart: period.start } }, refillAt: period.next }
}
