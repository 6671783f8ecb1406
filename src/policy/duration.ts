/**
 * Durations: the `'30d'`-style type every time option takes, its parser, and the bounds of durations
 * that back timers.
 */
import { ConfigError } from '../errors.js'

/**
 * A span of time: milliseconds as a number, or a string with one unit:
 * `'500ms'`, `'90s'`, `'15m'`, `'24h'`, `'30d'`, `'2w'`.
 *
 * @example
 * ```ts
 * import type { Duration } from 'keywarden'
 *
 * const window: Duration = '2d'   // same as 172_800_000
 * ```
 */
export type Duration = number | `${number}${DurationUnit}`

/**
 * Units accepted in a {@link Duration} string: milliseconds, seconds, minutes, hours, days, weeks.
 *
 * @example
 * ```ts
 * import type { Duration, DurationUnit } from 'keywarden'
 *
 * const units: DurationUnit[] = ['ms', 's', 'm', 'h', 'd', 'w']
 * const lifetime: Duration = '30d' // a number, then one unit
 * ```
 */
export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd' | 'w'

const UNIT_MS: Record<DurationUnit, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}

const DURATION_PATTERN = /^(\d{1,12})(ms|s|m|h|d|w)$/

/** Upper bound for any duration: 100 years, far beyond any sensible expiry, far below Date's range. */
export const MAX_DURATION_MS = 100 * 365 * UNIT_MS.d

/**
 * Converts a {@link Duration} to milliseconds, or returns `undefined` when it is not one
 * (negative, fractional, unknown unit, longer than 100 years).
 *
 * @example
 * ```ts
 * import { parseDuration } from 'keywarden'
 *
 * parseDuration('15m') // 900000
 * parseDuration('15 minutes') // undefined
 * ```
 */
export function parseDuration(value: unknown): number | undefined {
  let ms: number
  if (typeof value === 'number') {
    ms = value
  } else if (typeof value === 'string') {
    const match = DURATION_PATTERN.exec(value)
    if (!match) return undefined
    ms = Number(match[1]) * UNIT_MS[match[2] as DurationUnit]
  } else {
    return undefined
  }
  return Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_DURATION_MS ? ms : undefined
}

/**
 * The longest delay a timer keeps (2^31 − 1 ms, about 24.8 days): Node.js, browsers, Bun and Deno
 * turn a longer one into 1 ms, which would make an interval fire continuously.
 */
export const MAX_TIMER_MS = 2_147_483_647

/**
 * A {@link Duration} that a timer can wait, in milliseconds (1 ms to {@link MAX_TIMER_MS}), or
 * `undefined` when it is not one. Every timer-backed option goes through it.
 */
export function parseTimerDuration(value: unknown): number | undefined {
  const ms = parseDuration(value)
  return ms === undefined || ms < 1 || ms > MAX_TIMER_MS ? undefined : ms
}

/** What is wrong with a timer duration, for validation messages. */
export const TIMER_DURATION_MESSAGE = `must be a duration from 1 ms to ${MAX_TIMER_MS} ms (about 24.8 days): milliseconds, or a string such as '5s'`

/**
 * `value` as milliseconds if it is a timer duration ({@link parseTimerDuration}); otherwise throws a
 * `ConfigError` naming `option`. `alternative` is appended to the message (`', or false for no limit'`).
 */
export function timerDurationOption(value: unknown, option: string, alternative = ''): number {
  const ms = parseTimerDuration(value)
  if (ms === undefined) throw new ConfigError([{ path: [option], message: TIMER_DURATION_MESSAGE + alternative }])
  return ms
}
