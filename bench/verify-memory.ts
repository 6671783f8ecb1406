/**
 * Verify throughput on the memory store, single process (one core), against a bare in-process
 * baseline (Map lookup + SHA-256 + constant-time compare). Prints ops/s and the ratio to the baseline,
 * measured in the same run. Not a test: it asserts nothing about time.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { KeyManager } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { formatToken } from '../src/token/format.js'

export interface BenchResult {
  readonly name: string
  readonly opsPerSecond: number
  readonly ratioToBaseline: number | null
}

async function measure(run: () => Promise<unknown> | unknown, durationMs: number): Promise<number> {
  // Warm up, then count completed calls in a fixed time window.
  const warmUntil = performance.now() + Math.min(300, durationMs / 4)
  while (performance.now() < warmUntil) await run()
  let operations = 0
  const start = performance.now()
  let now = start
  while (now - start < durationMs) {
    for (let i = 0; i < 100; i++) await run()
    operations += 100
    now = performance.now()
  }
  return (operations * 1000) / (now - start)
}

export async function benchVerifyMemory(keyCount: number, durationMs: number): Promise<BenchResult[]> {
  const keys = new KeyManager({ store: new MemoryStore(), prefix: 'bench', pepper: 'bench-pepper-0123456789abcdef' })
  const tokens: string[] = []
  for (let i = 0; i < keyCount; i++) tokens.push((await keys.create({ name: `k${i}`, environment: 'live' })).token)
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

  const baseline = await measure(() => bareVerify(valid), durationMs)
  const results: BenchResult[] = [{ name: `bare baseline (${keyCount} keys)`, opsPerSecond: baseline, ratioToBaseline: 1 }]
  for (const [label, token] of [
    ['valid', valid],
    ['malformed', malformed],
    ['unknown key ID', unknownKey],
    ['wrong secret', wrongSecret],
  ] as const) {
    const ops = await measure(() => keys.verify(token), durationMs)
    results.push({ name: `verify ${label} (memory, ${keyCount} keys)`, opsPerSecond: ops, ratioToBaseline: ops / baseline })
  }
  return results
}
