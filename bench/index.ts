/**
 * `npm run bench`: runs every benchmark, prints a table and writes JSON to bench/results/latest.json.
 * Environment: BENCH_ONLY (comma list of memory, redis, redis-autopipelining, redis-node-redis (the
 * Redis verify rows through ioredis with auto-pipelining and through node-redis), redis-cluster, postgres, mariadb, sqlite, http, peer, limits; default
 * all): `limits` is every usage-limit row (rate limits and credits: bench/limits-*.ts and better-auth's
 * rate limit in bench/peer-better-auth.ts), `limits:<part>` one part of them (`limits:memory`,
 * `limits:redis`, `limits:postgres`, `limits:mariadb`, `limits:sqlite`, `limits:peer`); e.g.
 * `BENCH_ONLY=limits` runs the limit rows alone, `BENCH_ONLY=redis,limits:redis` all Redis rows.
 * BENCH_DURATION_MS (per case, default 2000), BENCH_MEMORY_KEYS (default 1000,1000000),
 * BENCH_STORE_KEYS (default 10000), BENCH_CONCURRENCY (store concurrency and HTTP connections, default 1,50),
 * BENCH_ROUNDS (interleaved rounds per comparison, default 5).
 * A missing store server skips that store; an HTTP run with any failed request stops the bench.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { printTable, ROUNDS, type BenchResult } from './harness.js'
import { benchVerifyMemory, footprints } from './verify-memory.js'

const list = (value: string | undefined, fallback: string) => (value ?? fallback).split(',').map((item) => item.trim()).filter(Boolean)
const only = new Set(list(process.env.BENCH_ONLY, 'memory,redis,redis-autopipelining,redis-node-redis,redis-cluster,postgres,mariadb,sqlite,http,peer,limits'))
const LIMIT_PARTS = ['memory', 'redis', 'postgres', 'mariadb', 'sqlite', 'peer']
for (const item of only) {
  const part = item.startsWith('limits:') ? item.slice('limits:'.length) : null
  if (part !== null && !LIMIT_PARTS.includes(part)) throw new Error(`BENCH_ONLY: unknown "${item}" (limits parts: ${LIMIT_PARTS.join(', ')})`)
}
/** Whether the usage-limit rows of `part` run: `limits` names them all, `limits:<part>` one part. */
const limitsOn = (part: string) => only.has('limits') || only.has(`limits:${part}`)
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 2000)
const memoryKeyCounts = list(process.env.BENCH_MEMORY_KEYS, '1000,1000000').map(Number)
const storeKeyCount = Number(process.env.BENCH_STORE_KEYS ?? 10_000)
const concurrencies = list(process.env.BENCH_CONCURRENCY, '1,50').map(Number)

const results: BenchResult[] = []
if (only.has('memory')) for (const keyCount of memoryKeyCounts) results.push(...(await benchVerifyMemory(keyCount, durationMs)))
if (limitsOn('memory')) {
  const { benchLimitsMemory } = await import('./limits-memory.js')
  for (const keyCount of memoryKeyCounts) results.push(...(await benchLimitsMemory(keyCount, durationMs)))
}
// The peer: better-auth's api-key plugin on the same kinds of store, same harness, same run.
const peerKeys = { memory: 1000, sql: storeKeyCount }
const peerStores = ['memory', 'postgres', 'sqlite'] as const
if (only.has('peer')) results.push(...(await (await import('./peer-better-auth.js')).benchBetterAuth(durationMs, peerKeys, peerStores)))
// With its per-key rate limit on (and a remaining count), next to keywarden's limited verify.
if (limitsOn('peer')) results.push(...(await (await import('./peer-better-auth.js')).benchBetterAuth(durationMs, peerKeys, peerStores, { limited: true, concurrencies })))
// Drivers are imported only after the memory and peer cases: on Node 20, merely loading ioredis slows an
// unrelated in-process verify loop by about 25% (measured; the V8 cause is not isolated).
const { benchVerifyStore, CLIENT_VARIANTS, STORE_FACTORIES } = await import('./verify-stores.js')
const { benchLimitsStore } = await import('./limits-stores.js')
for (const [name, factory] of Object.entries(STORE_FACTORIES)) {
  const runs = [
    ...(only.has(name) ? [() => benchVerifyStore(factory, storeKeyCount, durationMs, concurrencies)] : []),
    ...(limitsOn(name) && !CLIENT_VARIANTS.has(name) ? [() => benchLimitsStore(factory, storeKeyCount, durationMs, concurrencies)] : []),
  ]
  for (const run of runs) {
    try {
      results.push(...(await run()))
    } catch (error) {
      console.warn(`[bench] ${name} skipped: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
}
if (only.has('http')) results.push(...(await (await import('./http.js')).benchHttp(durationMs, concurrencies)))

const processes = only.has('http') ? 'one process (HTTP: server and autocannon in processes of their own)' : 'one process'
console.log(
  `node ${process.version}, ${processes}, ${durationMs} ms per case in ${ROUNDS} interleaved rounds; medians; ratios are against the case above marked baseline, median of same-round ratios`,
)
printTable(results)
for (const footprint of footprints) {
  console.log(`memory store: ${footprint.keys.toLocaleString('en-US')} keys hold ${(footprint.heapBytes / 2 ** 20).toFixed(1)} MiB of heap, ${footprint.bytesPerKey} bytes per key`)
}
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(
  new URL('./results/latest.json', import.meta.url),
  JSON.stringify({ node: process.version, durationMs, rounds: ROUNDS, date: new Date().toISOString(), results, footprints }, null, 2) + '\n',
)
