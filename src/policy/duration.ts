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
