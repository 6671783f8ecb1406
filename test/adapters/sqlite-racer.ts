/**
 * One process of the SQLite cross-process tests: opens its own connection, says `ready`, waits for a
 * line on stdin, races, and prints the outcomes as JSON.
 *
 * - `quota` (sqlite.test.ts): for owners `owner0` … `owner<count - 1>` in turn, inserts one record under
 *   a quota of 1. Every process walks the same owners at about the same pace, so each owner's quota is
 *   raced by all of them.
 * - `usage` (sql-usage.test.ts): `count` consumptions of {@link RACED_USAGE}, one after the other;
 *   prints each `refused`.
 *
 * Usage: node --import tsx sqlite-racer.ts <database file> <table> <id prefix> <count> [quota|usage]
 */
import { once } from 'node:events'
import { SqliteStore } from '../../adapters/sql/index.js'
import type { UsageRequest } from '../../src/limits/usage-store.js'
import { makeRecord, T0 } from '../conformance/records.js'
import { Database } from '../support/sqlite.js'

/** What every process of the `usage` race consumes: one fixed window of 100 and a balance of 90 (sql-usage.test.ts counts on these). */
const RACED_USAGE: UsageRequest = {
  now: T0,
  cost: 1,
  commit: true,
  rate: [{ id: 'rate:race:daily', algorithm: 'fixed-window', limit: 100, capacity: 100, windowMs: 86_400_000 }],
  credits: { id: 'credits:race', initial: 90, refill: null },
}

const [file, table, prefix, count, mode = 'quota'] = process.argv.slice(2)
await race()

async function race(): Promise<void> {
  const database = new Database(file!)
  const store = new SqliteStore({ database, table: table! })
  process.stdout.write('ready\n')
  await once(process.stdin, 'data')
  const results: (string | null)[] = []
  for (let i = 0; i < Number(count); i++) {
    if (mode === 'usage') {
      results.push((await store.consumeUsage(RACED_USAGE)).refused)
      continue
    }
    const ownerId = `owner${i}`
    results.push(await store.insert(makeRecord({ id: `${prefix}-${i}`, ownerId }), { ownerId, tenantId: null, limit: 1 }))
  }
  database.close()
  process.stdout.write(`${JSON.stringify(results)}\n`)
  process.stdin.destroy()
}
