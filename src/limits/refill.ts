/**
 * Refill periods: the period an instant falls in, for a fixed interval from an anchor or for a monthly
 * calendar day in UTC. Computed by the KeyManager, so stores compare instants and never do calendars.
 */
import type { CompiledRefill } from './config.js'

/** The refill period `now` falls in: its start and the next refill instant, epoch ms. */
export interface RefillPeriod {
  readonly start: number
  readonly next: number
}

/** The period of `refill` at `now`; `anchor` is where interval periods count from. */
export function refillPeriod(refill: CompiledRefill, now: number, anchor: number): RefillPeriod {
  if (refill.kind === 'interval') {
    const { intervalMs } = refill
    const start = now < anchor ? anchor - intervalMs : anchor + Math.floor((now - anchor) / intervalMs) * intervalMs
    return { start, next: start + intervalMs }
  }
  const date = new Date(now)
  let year = date.getUTCFullYear()
  let month = date.getUTCMonth()
  let start = monthlyRefill(year, month, refill.day)
  if (start > now) {
    ;[year, month] = month === 0 ? [year - 1, 11] : [year, month - 1]
    start = monthlyRefill(year, month, refill.day)
  }
  const [nextYear, nextMonth] = month === 11 ? [year + 1, 0] : [year, month + 1]
  return { start, next: monthlyRefill(nextYear, nextMonth, refill.day) }
}

/** Midnight UTC of `day` in the month, or of the month's last day when it is shorter. */
function monthlyRefill(year: number, month: number, day: number): number {
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate()
  return Date.UTC(year, month, Math.min(day, lastDay))
}
