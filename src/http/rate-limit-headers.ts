/**
 * The `RateLimit` and `RateLimit-Policy` fields of draft-ietf-httpapi-ratelimit-headers, serialised as
 * RFC 9651 Structured Fields, and the `Retry-After` of a refused request. Pure functions of the limit
 * states and "now": the verifier passes the KeyManager's clock, so every value is deterministic in tests.
 */
import type { LimitState } from '../limits/limit-state.js'
import type { VerifyResult } from '../types.js'

/**
 * The two rate-limit fields of one response. Both are absent when the key has no rate limits.
 *
 * @example
 * ```ts
 * import { rateLimitHeaders, type RateLimitHeaders } from 'keywarden'
 *
 * const result = await keys.verify(token)
 * if (result.valid) {
 *   const headers: RateLimitHeaders = rateLimitHeaders(result.limits, keys.options.clock())
 *   // { 'RateLimit-Policy': '"burst";q=10;w=1', RateLimit: '"burst";r=9;t=1' }
 * }
 * ```
 */
export interface RateLimitHeaders {
  /** Each limit's quota (`q`, requests) and window (`w`, seconds), e.g. `"burst";q=10;w=1`. */
  readonly 'RateLimit-Policy'?: string
  /** Each limit's remaining requests (`r`) and seconds until they grow (`t`), e.g. `"burst";r=0;t=1`. */
  readonly RateLimit?: string
}

// RFC 9651 sf-integer: at most 15 digits. Limits that large are not realistic, but a header must
// never carry a value a conforming parser rejects.
const SF_INTEGER_MAX = 999_999_999_999_999
// RFC 9651 sf-string: printable ASCII only. Rule names are already restricted to [A-Za-z0-9_.:-].
const SF_STRING_CHARS = /^[\x20-\x7e]*$/

function sfInteger(value: number): string {
  if (Number.isNaN(value)) return '0'
  return String(Math.min(SF_INTEGER_MAX, Math.max(0, Math.trunc(value))))
}

/**
 * An RFC 9651 sf-string: `"` and `\` escaped with a backslash; `null` for text with no sf-string form
 * (control or non-ASCII characters), so that member is left out rather than the whole field failing to parse.
 *
 * @internal
 */
export function sfString(text: string): string | null {
  if (!SF_STRING_CHARS.test(text)) return null
  return `"${text.replace(/[\\"]/g, (character) => `\\${character}`)}"`
}

/**
 * Whole seconds from `now` until `at`, rounded up so a client that waits them is never early; never negative.
 *
 * @internal
 */
export function secondsUntil(at: Date | number, now: number): number {
  const ms = (typeof at === 'number' ? at : at.getTime()) - now
  return Number.isFinite(ms) && ms > 0 ? Math.ceil(ms / 1000) : 0
}

/**
 * Serialises limit states as the `RateLimit-Policy` and `RateLimit` fields: one List member per limit,
 * in the order given (policy order), each an sf-string name with integer parameters. `q` is the limit,
 * `w` the window in seconds (rounded up: a sub-second window reads as 1), `r` the remaining requests,
 * `t` the seconds until `resetAt` (rounded up, never negative). No limits: no fields.
 *
 * @param limits the limit states a verify returned.
 * @param now epoch ms; pass the KeyManager's clock (`keys.options.clock()`).
 * @example
 * ```ts
 * import { rateLimitHeaders } from 'keywarden'
 *
 * const result = await keys.verify(token)
 * if (result.valid) {
 *   for (const [name, value] of Object.entries(rateLimitHeaders(result.limits, keys.options.clock()))) {
 *     console.info(`${name}: ${value}`) // RateLimit-Policy: "burst";q=10;w=1, "daily";q=1000;w=86400
 *   }
 * }
 * ```
 */
export function rateLimitHeaders(limits: readonly LimitState[], now: number): RateLimitHeaders {
  const policies: string[] = []
  const states: string[] = []
  for (const limit of limits) {
    const name = sfString(limit.name)
    if (name === null) continue
    policies.push(`${name};q=${sfInteger(limit.limit)};w=${sfInteger(Math.ceil(limit.windowMs / 1000))}`)
    states.push(`${name};r=${sfInteger(limit.remaining)};t=${sfInteger(secondsUntil(limit.resetAt, now))}`)
  }
  if (policies.length === 0) return {}
  return { 'RateLimit-Policy': policies.join(', '), RateLimit: states.join(', ') }
}

/**
 * A refusal that answers 429: what {@link retryAfterSeconds} reads.
 *
 * @example
 * ```ts
 * import type { LimitRefusal } from 'keywarden'
 *
 * const result = await keys.verify(token)
 * const refusal: LimitRefusal | null = !result.valid && (result.reason === 'rate_limited' || result.reason === 'usage_exceeded') ? result : null
 * ```
 */
export type LimitRefusal = Extract<
  VerifyResult,
  {
    /** The two usage refusals. */
    reason: 'rate_limited' | 'usage_exceeded'
  }
>

/**
 * `Retry-After` (seconds) for a 429, or `null` when waiting will not help.
 *
 * - `rate_limited`: `retryAfterMs` rounded up, and never earlier than the reset (`t`) of any violated
 *   limit, so a client that obeys it is not refused again by the same limit.
 * - `usage_exceeded`: until `credits.refillAt`, rounded up; `null` when the balance never refills.
 *
 * Always at least 1: the request was just refused, so "retry now" would only be refused again.
 *
 * @param now epoch ms; pass the KeyManager's clock (`keys.options.clock()`).
 * @example
 * ```ts
 * import { retryAfterSeconds } from 'keywarden'
 *
 * const result = await keys.verify(token)
 * if (!result.valid && (result.reason === 'rate_limited' || result.reason === 'usage_exceeded')) {
 *   const seconds = retryAfterSeconds(result, keys.options.clock())
 *   console.info(seconds === null ? 'out of credits for good' : `retry in ${seconds} s`)
 * }
 * ```
 */
export function retryAfterSeconds(refusal: LimitRefusal, now: number): number | null {
  let seconds: number
  if (refusal.reason === 'usage_exceeded') {
    if (refusal.credits.refillAt === null) return null
    seconds = secondsUntil(refusal.credits.refillAt, now)
  } else {
    const { retryAfterMs, violated } = refusal
    seconds = Number.isFinite(retryAfterMs) && retryAfterMs > 0 ? Math.ceil(retryAfterMs / 1000) : 0
    for (const limit of refusal.limits) {
      if (violated.includes(limit.name)) seconds = Math.max(seconds, secondsUntil(limit.resetAt, now))
    }
  }
  return Math.min(SF_INTEGER_MAX, Math.max(1, seconds))
}
