/**
 * Public limit types and how a counter's stored state reads as one: what remains, when it resets, and
 * how long a refused request must wait.
 */
import type { CompiledRule } from './config.js'
import type { CounterState } from './usage-store.js'

/**
 * Where one rate limit of a key stands after a verify: for the `RateLimit` headers and for callers.
 *
 * - `remaining`: requests of cost 1 that would pass now (a token bucket's whole tokens).
 * - `resetAt`: when `remaining` next grows: a fixed window's end; for a token bucket, the instant its
 *   next whole token arrives (now, when full).
 *
 * @example
 * ```ts
 * import type { LimitState } from 'keywarden'
 *
 * const result = await keys.verify(token)
 * if (result.valid) {
 *   for (const limit of result.limits) console.info(`${limit.name}: ${limit.remaining}/${limit.limit} until ${limit.resetAt.toISOString()}`)
 * }
 * ```
 */
export interface LimitState {
  /** The policy the limit belongs to. */
  readonly policy: string
  /** The rule's name, e.g. `burst`. */
  readonly name: string
  /** Requests per window. */
  readonly limit: number
  /** Requests of cost 1 that would pass now, >= 0. */
  readonly remaining: number
  /** When `remaining` next grows. */
  readonly resetAt: Date
  /** The rule's window, ms. */
  readonly windowMs: number
}

/**
 * A credit balance as management calls return it.
 *
 * @example
 * ```ts
 * import type { CreditBalance } from 'keywarden'
 *
 * const balance: CreditBalance | null = await keys.getCredits({ keyId })
 * if (balance) console.info(`${balance.remaining} credits left; refilled ${balance.refillAt?.toISOString() ?? 'never'}`)
 * ```
 */
export interface CreditBalance {
  /** Credits left, an integer >= 0. */
  readonly remaining: number
  /** When the next refill restores the balance; `null` when it never refills. */
  readonly refillAt: Date | null
}

/** When the state's `remaining` next grows, epoch ms. */
export function resetInstant(rule: CompiledRule, state: CounterState, now: number): number {
  if (rule.algorithm === 'fixed-window') return state.at + rule.windowMs
  if (state.value >= rule.capacity) return now
  const missing = Math.floor(state.value) + 1 - state.value
  return now + Math.ceil((missing * rule.windowMs) / rule.limit)
}

/** How long until a request of `cost` would pass this counter, ms (0 when it passes now). */
export function waitFor(rule: CompiledRule, state: CounterState, cost: number, now: number): number {
  if (rule.algorithm === 'fixed-window') {
    // A cost above the limit never passes; the window's end is the honest earliest answer.
    return state.value + cost <= rule.limit ? 0 : state.at + rule.windowMs - now
  }
  if (state.value >= cost) return 0
  // A cost above the bucket never passes: the honest answer is the wait until it is full (0 if it is).
  if (cost > rule.capacity) return Math.ceil((Math.max(0, rule.capacity - state.value) * rule.windowMs) / rule.limit)
  return Math.max(1, Math.ceil(((cost - state.value) * rule.windowMs) / rule.limit))
}

/** The public state of one counter. */
export function limitState(policy: string, rule: CompiledRule, state: CounterState, now: number): LimitState {
  const remaining = rule.algorithm === 'fixed-window' ? Math.max(0, rule.limit - state.value) : Math.max(0, Math.floor(state.value))
  return Object.freeze({ policy, name: rule.name, limit: rule.limit, remaining, resetAt: new Date(resetInstant(rule, state, now)), windowMs: rule.windowMs })
}
