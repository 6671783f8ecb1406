/**
 * One process of the SQLite cross-process quota test (sqlite.test.ts): opens its own connection, says
 * `ready`, waits for a line on stdin, then, for owners `owner0` … `owner<count - 1>` in turn, inserts
 * one record under a quota of 1, and prints the outcomes as JSON. Every process walks the same owners
 * at about the same pace, so each owner's quota is raced by all of them.
 *
 * Usage: node --import tsx sqlite-racer.ts <database file> <table> <id prefix> <count>
 */
import { once } from 'node:events'
import { SqliteStore } from '../../adapters/sql/index.js'
import { makeRecord } from '../conformance/records.js'
import { Database } from '../support/sqlite.js'

const [file, table, prefix, count] = process.argv.slice(2)
const database = new Database(file!)
const store = new SqliteStore({ database, table: table! })
process.stdout.write('ready\n')
await once(process.stdin, 'data')
const results: string[] = []
for (let i = 0; i < Number(count); i++) {
  const ownerId = `owner${i}`
  results.push(await store.insert(makeRecord({ id: `${prefix}-${i}`, ownerId }), { ownerId, tenantId: null, limit: 1 }))
}
database.close()
process.stdout.write(`${JSON.stringify(results)}\n`)
process.stdin.destroy()
