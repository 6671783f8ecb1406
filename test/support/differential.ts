/**
 * What the differential tests share: a reproducible pseudo-random source, and the contract's
 * `consumeIfCurrent` on the reference (memory) store, which the Redis and SQL stores are compared with.
 */
import type { MemoryStore } from '../../adapters/memory/index.js'
import { guardHolds, type GuardedUsageOutcome, type GuardedUsageRequest } from '../../src/limits/usage-store.js'

/** A deterministic pseudo-random sequence (mulberry32) and the draws the tests make from it. */
export function seededRandom(seed: number) {
  const next = (): number => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1))
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!
  const hex = (length: number): string => Array.from({ length }, () => '0123456789abcdef'[int(0, 15)]).join('')
  return { next, int, pick, hex }
}

/**
 * `consumeIfCurrent` as the contract states it (src/limits/usage-store.ts), on the reference store:
 * the record as stored, `guardHolds` on it, and the reference consumption only when it holds.
 */
export async function referenceConsumeIfCurrent(memory: MemoryStore, request: GuardedUsageRequest): Promise<GuardedUsageOutcome> {
  const record = await memory.get(request.keyId)
  if (record === null || !guardHolds(record, request)) return { applied: false, record }
  return { applied: true, outcome: await memory.consumeUsage(request), lastUsedAt: record.lastUsedAt }
}
