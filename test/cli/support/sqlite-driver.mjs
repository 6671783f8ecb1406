// Loaded with `node --import` into the spawned bin on CI's Node 24 run only: better-sqlite3 12 (the
// project's, for Node 20) crashes on Node 24, so `import('better-sqlite3')` resolves to the install
// KEYWARDEN_SQLITE_MODULE names, as test/support/sqlite.ts does in-process.
import { register } from 'node:module'

register(new URL('./sqlite-resolve.mjs', import.meta.url), { data: process.env.KEYWARDEN_SQLITE_MODULE })
