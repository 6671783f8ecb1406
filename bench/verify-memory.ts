/**
 * Verify throughput on the memory store, one process (one core), against a bare in-process baseline
 * (Map lookup + SHA-256 + constant-time compare), for valid, malformed, unknown-ID and wrong-secret tokens.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { KeyManager } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { formatToken } from '../src/token/format.js'
import { forEachConcurrently, interleave, measure, ROUNDS, type BenchResult } from './harness.js'

/** Heap in use after a full collection when the process runs with --expose-gc (npm run bench does). */
function heapUsed(): number {
  ;(globalThis as { gc?: () => void }).gc?.()
  return process.memoryUsage().heapUsed
}

/** Heap the memory store needs per key, measured while filling it. */
export interface MemoryFootprint {
  readonly keys: number
  readonly heapBytes: number
  readonly bytesPerKey: number
}

export const footprints: MemoryFootprint[] = []

export async function benchVerifyMemory(keyCount: number, durationMs: number): Promise<BenchResult[]> {
  const keys = new KeyManager({ store: new MemoryStore(), prefix: 'bench', pepper: 'bench-pepper-0123456789abcdef' })
  const tokens: string[] = []
  const before = heapUsed()
  await forEachConcurrently(Array.from({ length: keyCount }, (_, i) => i), 1, async (i) => {
    tokens.push((await keys.create({ name: `k${i}`, environment: 'live' })).token)
  })
  // The tokens array is the benchmark's, not the store's: subtract its share (one ~65-char string each).
  const heapBytes = heapUsed() - before - tokens.length * (65 + 16 + 8)
  footprints.push({ keys: keyCount, heapBytes, bytesPerKey: Math.round(heapBytes / keyCount) })
  const valid = tokens[Math.floor(keyCount / 2)]!
  const malformed = valid.slice(0, -1) + (valid.endsWith('x') ? 'y' : 'x')
  // Well-formed tokens (valid checksum) naming a key that does not exist, and a real key with a wrong secret.
  const { keyId } = keys.parseToken(valid)!
  const unknownKey = formatToken({ prefix: 'bench', environment: 'live', keyId: '0'.repeat(16), secret: '0'.repeat(32) })
  const wrongSecret = formatToken({ prefix: 'bench', environment: 'live', keyId, secret: '0'.repeat(32) })

  // The bare baseline: a Map of SHA-256 digests, looked up and compared in constant time.
  const bare = new Map<string, Buffer>()
  for (const token of tokens) bare.set(token.slice(11, 27), createHash('sha256').update(token).digest())
  const bareVerify = (token: string) => {
    const stored = bare.get(token.slice(11, 27))
    return stored !== undefined && timingSafeEqual(stored, createHash('sha256').update(token).digest())
  }
  if (!bareVerify(valid) || !(await keys.verify(valid)).valid) throw new Error('bench setup is wrong')
  for (const [token, reason] of [[malformed, 'malformed'], [unknownKey, 'unknown_key'], [wrongSecret, 'wrong_secret']] as const) {
    const result = await keys.verify(token)
    if (result.valid || result.reason !== reason) throw new Error(`bench setup is wrong for ${reason}`)
  }

  const cases = [
    ['valid', valid],
    ['malformed', malformed],
    ['unknown key ID', unknownKey],
    ['wrong secret', wrongSecret],
  ] as const
  const slice = durationMs / ROUNDS
  const comparison = await interleave([
    () => measure(() => bareVerify(valid), slice),
    ...cases.map(([, token]) => () => measure(() => keys.verify(token), slice)),
  ])
  const results: BenchResult[] = [{ name: `memory: bare Map + SHA-256 (${keyCount} keys)`, opsPerSecond: comparison.opsPerSecond(0), ratioToBaseline: null }]
  for (const [index, [label]] of cases.entries()) {
    results.push({ name: `memory: verify ${label} (${keyCount} keys)`, opsPerSecond: comparison.opsPerSecond(index + 1), ratioToBaseline: comparison.ratio(index + 1) })
  }
  return results
}
