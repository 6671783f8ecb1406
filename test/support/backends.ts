/**
 * Every storage backend, behind one shape, for suites that run the same scenario on each store (model
 * tests, concurrency, leak canary, faults). Each backend opens its own client on demand, gates on its
 * server like the adapter suites (skip visibly locally, fail under CI=true), gives every store a fresh
 * namespace or table, and can dump what a store holds, raw, for the leak canary.
 *
 * @example
 * ```ts
 * for (const backend of BACKENDS) {
 *   describe.skipIf(!(await backend.gate()).available)(backend.name, () => {
 *     it('works', async () => {
 *       const handle = await backend.open()
 *       try { ... handle.store ... } finally { await handle.cleanup() }
 *     })
 *   })
 * }
 * ```
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { MemoryStore } from '../../adapters/memory/index.js'
import { RedisStore } from '../../adapters/redis/index.js'
import { MySqlStore, PostgresStore, SqliteStore } from '../../adapters/sql/index.js'
import type { KeyStore } from '../../src/index.js'
import { recordStorageDump } from './canary/index.js'
import { mariadbGate, postgresGate, redisGate } from './gates.js'
import { SERVICES, uniqueSuffix, type ServiceGate } from './services.js'
import { Database } from './sqlite.js'

/** One open store with a fresh namespace or table. */
export interface BackendHandle {
  readonly store: KeyStore
  /** Everything the store holds, as raw text (rows, keys and values), for leak scans. */
  readonly dump: () => Promise<string>
  /** Drops the namespace or table. The shared client stays open for the next store. */
  readonly cleanup: () => Promise<void>
}

export interface Backend {
  readonly name: 'memory' | 'redis' | 'postgres' | 'mariadb' | 'sqlite'
  /** Probes the server once per process. */
  readonly gate: () => Promise<ServiceGate>
  /** A store on a fresh namespace or table, migrated. */
  readonly open: () => Promise<BackendHandle>
  /** Ends the shared client, if one was opened. Call from afterAll. */
  readonly close: () => Promise<void>
}

const ALWAYS: ServiceGate = { available: true, version: 'in process' }

/** Keys whose names contain `namespace`, found with SCAN (never KEYS). */
async function scanKeys(client: Redis, namespace: string): Promise<string[]> {
  const found: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `*${namespace}*`, 'COUNT', 1000)
    found.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return found
}

function memoryBackend(): Backend {
  return {
    name: 'memory',
    gate: async () => ALWAYS,
    open: async () => {
      const store = new MemoryStore()
      const dump = async () => {
        const all = await store.list({ now: Date.now(), order: 'asc', limit: 1_000_000 })
        return JSON.stringify(all)
      }
      return { store, dump, cleanup: async () => {} }
    },
    close: async () => {},
  }
}

function redisBackend(): Backend {
  let client: Redis | undefined
  return {
    name: 'redis',
    gate: redisGate,
    open: async () => {
      client ??= new Redis(SERVICES.redis)
      const redis = client
      const namespace = `kwt${uniqueSuffix()}`
      const store = new RedisStore({ client: redis, namespace })
      const dump = async () => {
        const lines: string[] = []
        for (const key of await scanKeys(redis, namespace)) {
          const type = await redis.type(key)
          const value =
            type === 'hash' ? await redis.hgetall(key) : type === 'zset' ? await redis.call('ZRANGE', key, '0', '-1', 'WITHSCORES') : type === 'set' ? await redis.smembers(key) : await redis.get(key)
          lines.push(`${key} ${JSON.stringify(value)}`)
        }
        return lines.join('\n')
      }
      const cleanup = async () => {
        const keys = await scanKeys(redis, namespace)
        if (keys.length > 0) await redis.del(...keys)
      }
      return { store, dump, cleanup }
    },
    close: async () => {
      client?.disconnect()
      client = undefined
    },
  }
}

function postgresBackend(): Backend {
  let pool: pg.Pool | undefined
  return {
    name: 'postgres',
    gate: postgresGate,
    open: async () => {
      pool ??= new pg.Pool({ ...SERVICES.postgres, max: 12 })
      const db = pool
      const store = new PostgresStore({ pool: db, table: `kwt_${uniqueSuffix()}` })
      await store.migrate()
      const dump = async () => JSON.stringify((await db.query(`SELECT * FROM "${store.table}"`)).rows)
      const cleanup = async () => void (await db.query(`DROP TABLE IF EXISTS "${store.table}", "${store.table}_usage", "${store.table}_audit"; DROP FUNCTION IF EXISTS "${store.table}_consume"`))
      return { store, dump, cleanup }
    },
    close: async () => {
      await pool?.end()
      pool = undefined
    },
  }
}

function mariadbBackend(): Backend {
  let pool: mysql.Pool | undefined
  return {
    name: 'mariadb',
    gate: mariadbGate,
    open: async () => {
      pool ??= mysql.createPool({ ...SERVICES.mariadb, connectionLimit: 12 })
      const db = pool
      const store = new MySqlStore({ pool: db, table: `kwt_${uniqueSuffix()}` })
      await store.migrate()
      const dump = async () => {
        const [rows] = await db.query(`SELECT * FROM \`${store.table}\``)
        return JSON.stringify(rows, (_key, value: unknown) => (Buffer.isBuffer(value) ? value.toString('utf8') : value))
      }
      const cleanup = async () => void (await db.query(`DROP TABLE IF EXISTS \`${store.table}\`, \`${store.table}_locks\`, \`${store.table}_usage\`, \`${store.table}_audit\``))
      return { store, dump, cleanup }
    },
    close: async () => {
      await pool?.end()
      pool = undefined
    },
  }
}

function sqliteBackend(): Backend {
  let opened: { directory: string; database: InstanceType<typeof Database> } | undefined
  return {
    name: 'sqlite',
    gate: async () => ALWAYS,
    open: async () => {
      if (opened === undefined) {
        const directory = mkdtempSync(join(tmpdir(), 'keywarden-backend-'))
        const database = new Database(join(directory, 'keys.db'))
        database.pragma('journal_mode = WAL')
        opened = { directory, database }
      }
      const { database } = opened
      const store = new SqliteStore({ database, table: `kwt_${uniqueSuffix()}` })
      await store.migrate()
      const dump = async () => JSON.stringify(database.prepare(`SELECT * FROM "${store.table}"`).all())
      const cleanup = async () => void database.exec(`DROP TABLE IF EXISTS "${store.table}"; DROP TABLE IF EXISTS "${store.table}_usage"; DROP TABLE IF EXISTS "${store.table}_audit"`)
      return { store, dump, cleanup }
    },
    close: async () => {
      if (opened === undefined) return
      opened.database.close()
      rmSync(opened.directory, { recursive: true, force: true })
      opened = undefined
    },
  }
}

/** For the leak canary: each handle's cleanup first hands its raw dump to the canary's corpus. */
function dumpBeforeCleanup(backend: Backend): Backend {
  return {
    ...backend,
    open: async () => {
      const handle = await backend.open()
      const cleanup = async () => {
        const text = await handle.dump().catch((error: unknown) => `(not dumped: ${String(error)})`)
        recordStorageDump(text, `${backend.name} backend, before cleanup`)
        await handle.cleanup()
      }
      return { ...handle, cleanup }
    },
  }
}

/** Memory, Redis, PostgreSQL, MariaDB and SQLite, in that order. */
export const BACKENDS: readonly Backend[] = [memoryBackend(), redisBackend(), postgresBackend(), mariadbBackend(), sqliteBackend()].map(dumpBeforeCleanup)
