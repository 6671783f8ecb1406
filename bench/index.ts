/**
 * `npm run bench`: runs every benchmark, prints a table and writes JSON to bench/results/latest.json.
 * Environment: BENCH_ONLY (comma list of memory, redis, postgres, mariadb, sqlite; default all),
 * BENCH_DURATION_MS (per case, default 2000), BENCH_MEMORY_KEYS (default 1000,100000),
 * BENCH_STORE_KEYS (default 10000), BENCH_CONCURRENCY (default 1,50).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { printTable, type BenchResult } from './harness.js'
import { benchVerifyMemory } from './verify-memory.js'
import { benchVerifyStore, STORE_FACTORIES } from './verify-stores.js'

const list = (value: string | undefined, fallback: string) => (value ?? fallback).split(',').map((item) => item.trim()).filter(Boolean)
const only = new Set(list(process.env.BENCH_ONLY, 'memory,redis,postgres,mariadb,sqlite'))
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 2000)
const memoryKeyCounts = list(process.env.BENCH_MEMORY_KEYS, '1000,100000').map(Number)
const storeKeyCount = Number(process.env.BENCH_STORE_KEYS ?? 10_000)
const concurrencies = list(process.env.BENCH_CONCURRENCY, '1,50').map(Number)

const results: BenchResult[] = []
if (only.has('memory')) for (const keyCount of memoryKeyCounts) results.push(...(await benchVerifyMemory(keyCount, durationMs)))
for (const [name, factory] of Object.entries(STORE_FACTORIES)) {
  if (!only.has(name)) continue
  try {
    results.push(...(await benchVerifyStore(factory, storeKeyCount, durationMs, concurrencies)))
  } catch (error) {
    console.warn(`[bench] ${name} skipped: ${error instanceof Error ? error.message : String(error)}`)
  }
}

console.log(`node ${process.version}, one process, ${durationMs} ms per case; ratios are against the case above marked baseline`)
printTable(results)
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(
  new URL('./results/latest.json', import.meta.url),
  JSON.stringify({ node: process.version, durationMs, date: new Date().toISOString(), results }, null, 2) + '\n',
)
