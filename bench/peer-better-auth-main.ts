/**
 * `npx tsx bench/peer-better-auth-main.ts`: keywarden vs better-auth's API-key plugin, verify of a
 * valid key at concurrency 1. Environment: BENCH_DURATION_MS (per case, default 2000),
 * BENCH_PEER_STORES (comma list of memory, postgres, sqlite; default all),
 * BENCH_PEER_MEMORY_KEYS (default 1000), BENCH_PEER_SQL_KEYS (default 10000).
 */
import { printTable } from './harness.js'
import { benchBetterAuth, type PeerStore } from './peer-better-auth.js'

const STORES: readonly PeerStore[] = ['memory', 'postgres', 'sqlite']
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 2000)
const memoryKeys = Number(process.env.BENCH_PEER_MEMORY_KEYS ?? 1000)
const sqlKeys = Number(process.env.BENCH_PEER_SQL_KEYS ?? 10_000)
const stores = (process.env.BENCH_PEER_STORES ?? STORES.join(','))
  .split(',')
  .map((item) => item.trim())
  .filter((item): item is PeerStore => {
    if (item === '') return false
    if ((STORES as readonly string[]).includes(item)) return true
    throw new Error(`BENCH_PEER_STORES: unknown store "${item}" (expected ${STORES.join(', ')})`)
  })

const results = await benchBetterAuth(durationMs, { memory: memoryKeys, sql: sqlKeys }, stores)
console.log(`node ${process.version}, one process, concurrency 1, ${durationMs} ms per case; ratio = keywarden / better-auth above it`)
printTable(results)
