/**
 * The better-sqlite3 module the SQLite tests use. better-sqlite3 12 is what Node 20 runs (13 crashes
 * there) and 12 crashes on Node 24 (13 is built for it), so CI's Node 24 run points
 * KEYWARDEN_SQLITE_MODULE at a better-sqlite3 13 install; otherwise it is the project's own.
 */
import { createRequire } from 'node:module'
import type BetterSqlite3 from 'better-sqlite3'

const require = createRequire(import.meta.url)

export const Database = require(process.env.KEYWARDEN_SQLITE_MODULE ?? 'better-sqlite3') as typeof BetterSqlite3
export type Database = BetterSqlite3.Database
