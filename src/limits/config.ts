/**
 * The `limits` option: named usage policies (rate limits, credits) and which one a key follows. Parsed
 * once into {@link CompiledPolicy} values, so verify does no parsing.
 */
import * as z from 'zod/mini'
import { StoreError } from '../errors.js'
import type { Duration } from '../policy/duration.js'
import type { ApiKey } from '../types.js'
import { durationSchema, roleNameSchema } from '../validation.js'
import { isUsageStore, type RateAlgorithm, type UsageStore } from './usage-store.js'

/**
 * Who shares a counter or a balance: each key on its own (`'key'`, the default), all keys of one owner
 * within its tenant (`'owner'`), or all keys of one tenant (`'tenant'`). A key without an owner counts
 * on its own under `'owner'`; a key without a tenant falls back to `'owner'` under `'tenant'`.
 *
 * @example
 * ```ts
 * import type { LimitScope } from 'keywarden'
 *
 * const shared: LimitScope = 'tenant' // one counter for a whole customer, however many keys it makes
 * ```
 */
export type LimitScope = 'key' | 'owner' | 'tenant'

/**
 * One rate limit of a policy.
 *
 * @example
 * ```ts
 * import type { RateLimitRule } from 'keywarden'
 *
 * const burst: RateLimitRule = { name: 'burst', limit: 10, window: '1s' }
 * const daily: RateLimitRule = { name: 'daily', limit: 1000, window: '1d', algorithm: 'fixed-window' }
 * ```
 */
export interface RateLimitRule {
  /** Unique within the policy; 1-64 letters, digits or `_ . : -`. Shown in the `RateLimit` headers. */
  name: string
  /** Requests (of cost 1) per window, a positive integer. */
  limit: number
  /** The window, e.g. `'1s'`, `'1m'`, `'1d'`, or milliseconds; at most 100 years. */
  window: Duration
  /** `'token-bucket'` (the default) or `'fixed-window'` (windows aligned to the epoch, in UTC). */
  algorithm?: RateAlgorithm
  /** Token bucket only: the bucket's size, so the most a key can spend at once; default `limit`. */
  burst?: number
  /** Who shares the counter; default `'key'`. */
  per?: LimitScope
}

/**
 * When a credit balance is restored: every `interval` (counted from the key's creation for a key's own
 * balance, from the epoch for shared pools), or on a calendar `day` of every month in UTC (a day past
 * the month's end means its last day).
 *
 * @example
 * ```ts
 * import type { CreditRefill } from 'keywarden'
 *
 * const rolling: CreditRefill = { amount: 10_000, interval: '30d' }
 * const monthly: CreditRefill = { amount: 10_000, every: 'month', day: 1 }
 * ```
 */
export type CreditRefill =
  | {
      /** The balance after a refill (not an amount added), an integer >= 0. */
      amount: number
      /** Time between refills. */
      interval: Duration
    }
  | {
      /** The balance after a refill (not an amount added), an integer >= 0. */
      amount: number
      /** Refill on a calendar day of every month. */
      every: 'month'
      /** Day of the month, 1-31, UTC; default 1. */
      day?: number
    }

/**
 * The credits of a policy: a balance each request's `cost` is taken from, refused at zero.
 *
 * @example
 * ```ts
 * import type { CreditsRule } from 'keywarden'
 *
 * const team: CreditsRule = { per: 'tenant', refill: { amount: 100_000, every: 'month', day: 1 } }
 * ```
 */
export interface CreditsRule {
  /** When and to what the balance is restored; without it the balance changes only by use and by `addCredits`/`setCredits`. */
  refill?: CreditRefill
  /** The balance of a pool nobody has used yet; default the refill amount, else 0. */
  initial?: number
  /** Who shares the balance; default `'key'`. */
  per?: LimitScope
}

/**
 * A named usage policy: rate limits, credits, or both.
 *
 * @example
 * ```ts
 * import type { LimitPolicy } from 'keywarden'
 *
 * const free: LimitPolicy = {
 *   rate: [{ name: 'burst', limit: 10, window: '1s' }],
 *   credits: { refill: { amount: 10_000, interval: '30d' } },
 * }
 * ```
 */
export interface LimitPolicy {
  /** Checked in order; a request must pass all of them. */
  rate?: readonly RateLimitRule[]
  /** The balance a request is charged to. */
  credits?: CreditsRule
}

/**
 * The `limits` option of a KeyManager.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { MemoryStore } from 'keywarden/adapters/memory'
 *
 * const keys = new KeyManager({
 *   store: new MemoryStore(),
 *   limits: {
 *     policies: {
 *       free: { rate: [{ name: 'burst', limit: 10, window: '1s' }], credits: { refill: { amount: 1000, every: 'month' } } },
 *       pro: { rate: [{ name: 'minute', limit: 6000, window: '1m' }] },
 *     },
 *     defaultPolicy: 'free',
 *   },
 * })
 * ```
 */
export interface LimitsOptions {
  /** Policies by name (1-64 letters, digits or `_ . : -`). A key names one; editing one here changes every key that uses it. */
  policies?: Readonly<Record<string, LimitPolicy>>
  /**
   * The policy of a key that names none (or names one no longer configured): a policy name, `null`
   * (unlimited; the default), or a function of the key returning either. The function runs on every
   * verify of such a key: keep it fast and synchronous.
   */
  defaultPolicy?: string | null | ((key: ApiKey) => string | null)
  /** Where counters and balances live; default the key store. Any {@link UsageStore}, e.g. a RedisStore. */
  counters?: UsageStore
  /**
   * When the counters cannot be reached: `false` (the default) fails verify with a StoreError (503 over
   * HTTP); `true` lets requests through unlimited for rate limits only. Credits always fail closed.
   */
  failOpen?: boolean
  /** Told about each counter failure that `failOpen` let through. Default: `console.error`. */
  onError?: (error: unknown) => void
}

/** A rate rule ready for verify. */
export interface CompiledRule {
  readonly name: string
  readonly algorithm: RateAlgorithm
  readonly limit: number
  readonly capacity: number
  readonly windowMs: number
  readonly per: LimitScope
}

/** A refill ready for verify: a fixed interval from an anchor, or a monthly calendar day. */
export type CompiledRefill =
  | { readonly amount: number; readonly kind: 'interval'; readonly intervalMs: number }
  | { readonly amount: number; readonly kind: 'month'; readonly day: number }

/** Credits ready for verify. */
export interface CompiledCredits {
  readonly initial: number
  readonly refill: CompiledRefill | null
  readonly per: LimitScope
}

/** A policy ready for verify. */
export interface CompiledPolicy {
  readonly name: string
  readonly rate: readonly CompiledRule[]
  readonly credits: CompiledCredits | null
}

/** The resolved `limits` option. */
export interface ResolvedLimits {
  readonly policies: ReadonlyMap<string, CompiledPolicy>
  readonly defaultPolicy: string | null | ((key: ApiKey) => string | null)
  readonly counters: UsageStore | null
  readonly failOpen: boolean
  readonly onError: (error: unknown) => void
}

const countSchema = z.number().check(z.int(), z.gte(1), z.lte(Number.MAX_SAFE_INTEGER))
const balanceSchema = z.number().check(z.int(), z.gte(0), z.lte(Number.MAX_SAFE_INTEGER))
const scopeSchema = z.enum(['key', 'owner', 'tenant'])
const windowSchema = durationSchema.check(z.refine((ms: number) => ms > 0, 'must be longer than 0'))

const ruleSchema = z
  .strictObject({
    name: roleNameSchema,
    limit: countSchema,
    window: windowSchema,
    algorithm: z.optional(z.enum(['token-bucket', 'fixed-window'])),
    burst: z.optional(countSchema),
    per: z.optional(scopeSchema),
  })
  .check(
    z.refine((rule: { algorithm?: string; burst?: number }) => rule.burst === undefined || rule.algorithm !== 'fixed-window', {
      message: 'burst applies to token-bucket rules only',
      path: ['burst'],
    }),
  )

const refillSchema = z.union([
  z.strictObject({ amount: balanceSchema, interval: windowSchema }),
  z.strictObject({ amount: balanceSchema, every: z.literal('month'), day: z.optional(z.number().check(z.int(), z.gte(1), z.lte(31))) }),
])

const policySchema = z.strictObject({
  rate: z.optional(
    z.array(ruleSchema).check(
      z.refine((rules: { name: string }[]) => new Set(rules.map((rule) => rule.name)).size === rules.length, 'rule names must be unique within a policy'),
    ),
  ),
  credits: z.optional(z.strictObject({ refill: z.optional(refillSchema), initial: z.optional(balanceSchema), per: z.optional(scopeSchema) })),
})

const countersSchema = z.custom<UsageStore>(isUsageStore, 'must implement UsageStore (consumeUsage, adjustCredits)')

/** The zod schema of the `limits` option (checked as part of the KeyManager's options). */
export const limitsSchema = z.optional(
  z.strictObject({
    policies: z._default(z.record(roleNameSchema, policySchema), {}),
    defaultPolicy: z.optional(z.union([roleNameSchema, z.null(), z.custom<(key: ApiKey) => string | null>((value) => typeof value === 'function', 'must be a policy name, null or a function')])),
    counters: z.optional(countersSchema),
    failOpen: z._default(z.boolean(), false),
    onError: z.optional(z.custom<(error: unknown) => void>((value) => typeof value === 'function', 'must be a function')),
  }),
)

type ParsedLimits = NonNullable<z.infer<typeof limitsSchema>>

function compileRule(rule: ParsedLimits['policies'][string]['rate'] extends (infer R)[] | undefined ? R : never): CompiledRule {
  const algorithm = rule.algorithm ?? 'token-bucket'
  return Object.freeze({
    name: rule.name,
    algorithm,
    limit: rule.limit,
    capacity: algorithm === 'token-bucket' ? (rule.burst ?? rule.limit) : rule.limit,
    windowMs: rule.window,
    per: rule.per ?? 'key',
  })
}

function compileCredits(credits: NonNullable<ParsedLimits['policies'][string]['credits']>): CompiledCredits {
  const refill = credits.refill
  const compiled: CompiledRefill | null =
    refill === undefined
      ? null
      : 'interval' in refill
        ? { amount: refill.amount, kind: 'interval', intervalMs: refill.interval }
        : { amount: refill.amount, kind: 'month', day: refill.day ?? 1 }
  return Object.freeze({ initial: credits.initial ?? refill?.amount ?? 0, refill: compiled && Object.freeze(compiled), per: credits.per ?? 'key' })
}

/** The counter store, or a StoreError naming `operation` when there is none to use. */
export function countersOf(limits: ResolvedLimits, operation: string): UsageStore {
  if (limits.counters === null) throw new StoreError(operation, { cause: new Error('the key store keeps no counters: set limits.counters') })
  return limits.counters
}

function defaultCounterErrorHandler(error: unknown): void {
  console.error('keywarden: the rate-limit counters failed; limits.failOpen let the request through', error)
}

/** Compiles the parsed option; `store` is the key store, the default home of counters. */
export function resolveLimits(parsed: ParsedLimits | undefined, store: unknown): ResolvedLimits {
  const policies = new Map<string, CompiledPolicy>()
  for (const [name, policy] of Object.entries(parsed?.policies ?? {})) {
    policies.set(name, Object.freeze({ name, rate: Object.freeze((policy.rate ?? []).map(compileRule)), credits: policy.credits ? compileCredits(policy.credits) : null }))
  }
  return Object.freeze({
    policies,
    defaultPolicy: parsed?.defaultPolicy ?? null,
    counters: parsed?.counters ?? (isUsageStore(store) ? store : null),
    failOpen: parsed?.failOpen ?? false,
    onError: parsed?.onError ?? defaultCounterErrorHandler,
  })
}
