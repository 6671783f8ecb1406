/**
 * The usage policies the limit benchmarks verify under. Every limit is far above what a run can reach
 * (a 2 s slice at 10^5-10^6 verifies/s spread over thousands of keys), so no measured request is
 * refused; the benchmarks still check each answer and stop the run on a refusal rather than time it.
 */
import type { KeyManagerOptions, VerifyResult } from 'keywarden'

/** Two rate rules: a token bucket and a daily fixed window, each per key. */
export const TWO_RULES = [
  { name: 'burst', limit: 1e9, window: '1s' },
  { name: 'daily', limit: 1e12, window: '1d', algorithm: 'fixed-window' },
] as const

/**
 * `rules`: the two rate rules only. `metered`: the two rules plus credits, each key with a balance of
 * its own (per key, starting at 10^12; no refill) charged one credit per verify: the same store step as
 * a key created with `credits: 1e12`, without a second set of keys.
 */
export const BENCH_LIMITS = {
  policies: {
    rules: { rate: TWO_RULES.map((rule) => ({ ...rule })) },
    metered: { rate: TWO_RULES.map((rule) => ({ ...rule })), credits: { initial: 1e12 } },
  },
} satisfies NonNullable<KeyManagerOptions['limits']>

export type BenchPolicy = keyof typeof BENCH_LIMITS.policies

/** The `limits` option of a KeyManager whose every key (they name no policy) follows `policy`. */
export function limitsFor(policy: BenchPolicy): NonNullable<KeyManagerOptions['limits']> {
  return { ...BENCH_LIMITS, defaultPolicy: policy }
}

/** Throws unless `result` is an accepted verify that went through the limits (`limited`) or not. */
export function expectAccepted(result: VerifyResult, limited: boolean): void {
  if (!result.valid) throw new Error(`bench: a verify was refused (${result.reason}); the limits are meant to be out of reach`)
  if (limited && result.limits.length !== TWO_RULES.length) throw new Error('bench: a limited verify returned no limit states')
}
