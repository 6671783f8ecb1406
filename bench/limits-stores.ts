/**
 * Verify with rate limits and credits on each real store, next to plain verify and the same driver's
 * plain single-key read (Redis GET, a primary-key SELECT: the baseline), at each concurrency, in
 * interleaved rounds. The same N keys are verified by a KeyManager without limits and by one whose
 * every key follows two rate rules (token bucket + daily fixed window) and is charged one credit
 * (a per-key balance of 10^12), counters and balances kept in the key store itself (the default).
 * Whatever path the KeyManager takes (e.g. reading and charging in one round trip) is what is timed.
 *
 * Warm: every key was verified once by both KeyManagers before timing, so every counter and balance
 * row exists and the once-a-minute lastUsedAt write is not inside the timed window. Every answer is
 * checked: a refusal stops the run (the limits are far out of reach), so only accepts are counted.
 */
import { KeyManager } from 'keywarden'
import { forEachConcurrently, interleave, measure, ROUNDS, type BenchResult } from './harness.js'
import { expectAccepted, limitsFor } from './limits-policy.js'
import type { StoreUnderTest } from './verify-stores.js'

const PEPPER = 'bench-pepper-0123456789abcdef'

export async function benchLimitsStore(
  factory: () => Promise<StoreUnderTest>,
  keyCount: number,
  durationMs: number,
  concurrencies: readonly number[],
): Promise<BenchResult[]> {
  const subject = await factory()
  const plain = new KeyManager({ store: subject.store, prefix: 'bench', pepper: PEPPER })
  const limited = new KeyManager({ store: subject.store, prefix: 'bench', pepper: PEPPER, limits: limitsFor('metered') })
  try {
    const tokens: string[] = []
    await forEachConcurrently(Array.from({ length: keyCount }, (_, i) => i), 20, async (i) => {
      tokens.push((await plain.create({ name: `k${i}`, environment: 'live' })).token)
    })
    await forEachConcurrently(tokens, 20, async (token) => {
      expectAccepted(await plain.verify(token), false)
      expectAccepted(await limited.verify(token), true)
    })
    const ids = tokens.map((token) => plain.parseToken(token)!.keyId)
    const strideFrom = () => {
      let cursor = 0
      return () => (cursor = (cursor + 7919) % keyCount) // a stride through every key
    }
    const [nextRead, nextPlain, nextLimited] = [strideFrom(), strideFrom(), strideFrom()]

    const results: BenchResult[] = []
    for (const concurrency of concurrencies) {
      const slice = durationMs / ROUNDS
      const comparison = await interleave([
        () => measure(() => subject.plainRead(ids[nextRead()]!), slice, concurrency),
        () => measure(async () => expectAccepted(await plain.verify(tokens[nextPlain()]!), false), slice, concurrency),
        () => measure(async () => expectAccepted(await limited.verify(tokens[nextLimited()]!), true), slice, concurrency),
      ])
      results.push(
        { name: `${subject.name}: plain read, c=${concurrency}`, opsPerSecond: comparison.opsPerSecond(0), ratioToBaseline: null },
        { name: `${subject.name}: verify, no limits, c=${concurrency}`, opsPerSecond: comparison.opsPerSecond(1), ratioToBaseline: comparison.ratio(1) },
        {
          name: `${subject.name}: verify + 2 rate rules + credits, c=${concurrency}`,
          opsPerSecond: comparison.opsPerSecond(2),
          ratioToBaseline: comparison.ratio(2),
          note: `${comparison.ratio(2, 1).toFixed(2)}x of verify without limits`,
        },
      )
    }
    return results
  } finally {
    // Write the buffered lastUsedAt values while the store is still open, then drop it.
    await Promise.all([plain.close(), limited.close()])
    await subject.cleanup()
  }
}
