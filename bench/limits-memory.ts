/**
 * Verify with usage limits on the memory store, one process (one core): the same keys verified by a
 * KeyManager without limits (the baseline) and by KeyManagers whose every key follows a policy (two
 * rate rules; two rate rules plus credits), counters kept in the same MemoryStore. Warm: every key
 * was verified once by each limited KeyManager before timing, so each counter and balance exists (the
 * baseline is not warmed, as in bench/verify-memory.ts: it has nothing to create). Each case verifies
 * the next key of a stride through all of them. The credits row runs up to CREDITS_ROW_MAX_KEYS keys
 * only: at 10^6 keys its warm-up alone takes about a minute. Imports no store driver (see the note in
 * bench/index.ts about loading ioredis).
 */
import { KeyManager } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { forEachConcurrently, interleave, measure, ROUNDS, type BenchResult } from './harness.js'
import { expectAccepted, limitsFor } from './limits-policy.js'

const PEPPER = 'bench-pepper-0123456789abcdef'
const CREDITS_ROW_MAX_KEYS = 100_000

export async function benchLimitsMemory(keyCount: number, durationMs: number): Promise<BenchResult[]> {
  const store = new MemoryStore()
  const options = { store, prefix: 'bench', pepper: PEPPER }
  const plain = new KeyManager(options)
  const rules = new KeyManager({ ...options, limits: limitsFor('rules') })
  const metered = keyCount <= CREDITS_ROW_MAX_KEYS ? new KeyManager({ ...options, limits: limitsFor('metered') }) : null
  try {
    const tokens: string[] = []
    for (let i = 0; i < keyCount; i++) tokens.push((await plain.create({ name: `k${i}`, environment: 'live' })).token)
    await forEachConcurrently(tokens, 1, async (token) => {
      expectAccepted(await rules.verify(token), true)
      if (metered !== null) expectAccepted(await metered.verify(token), true)
    })
    const strideFrom = () => {
      let cursor = 0
      return () => tokens[(cursor = (cursor + 7919) % keyCount)]!
    }
    const [nextPlain, nextRules, nextMetered] = [strideFrom(), strideFrom(), strideFrom()]
    const slice = durationMs / ROUNDS
    const comparison = await interleave([
      () => measure(async () => expectAccepted(await plain.verify(nextPlain()), false), slice),
      () => measure(async () => expectAccepted(await rules.verify(nextRules()), true), slice),
      ...(metered === null ? [] : [() => measure(async () => expectAccepted(await metered.verify(nextMetered()), true), slice)]),
    ])
    return [
      { name: `memory: verify, no limits (${keyCount} keys)`, opsPerSecond: comparison.opsPerSecond(0), ratioToBaseline: null },
      { name: `memory: verify, two-rule policy (${keyCount} keys)`, opsPerSecond: comparison.opsPerSecond(1), ratioToBaseline: comparison.ratio(1) },
      ...(metered === null ? [] : [{ name: `memory: verify, two rules + credits (${keyCount} keys)`, opsPerSecond: comparison.opsPerSecond(2), ratioToBaseline: comparison.ratio(2) }]),
    ]
  } finally {
    await Promise.all([plain.close(), rules.close(), metered?.close()])
  }
}
