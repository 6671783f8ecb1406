/**
 * Where a store lives (a Redis namespace, a table, a SQLite file), as plain JSON, and how to open a
 * second store on that same place with a client of its own: what another app instance, or another
 * process, does. The test process and the worker (worker.ts) both open stores through here.
 */
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { RedisStore } from '../../adapters/redis/index.js'
import { MySqlStore, PostgresStore, SqliteStore, type SqlStore } from '../../adapters/sql/index.js'
import type { KeyStore } from '../../src/index.js'
import type { Backend } from '../support/backends.js'
import { SERVICES } from '../support/services.js'
import { Database } from '../support/sqlite.js'

/** A store's place, enough for another client to open the same data. */
export type StoreLocation =
  | { readonly backend: 'redis'; readonly namespace: string }
  | { readonly backend: 'postgres' | 'mariadb'; readonly table: string }
  | { readonly backend: 'sqlite'; readonly file: string; readonly table: string }

/** A store on a client opened here; `close` ends that client (never the data). */
export interface SharedStore {
  readonly store: KeyStore
  readonly close: () => Promise<void>
}

/**
 * The location of a store opened by `backend.open()`, for the backends whose handle shows it (the
 * Redis namespace and the SQL table are public properties). Memory has no place another client could
 * reach, and the SQLite handle does not tell its file: both answer `null`.
 */
export function locationOf(backend: Backend['name'], store: KeyStore): StoreLocation | null {
  switch (backend) {
    case 'redis':
      return { backend, namespace: (store as RedisStore).namespace }
    case 'postgres':
    case 'mariadb':
      return { backend, table: (store as SqlStore).table }
    default:
      return null
  }
}

/** Opens a store on `location` with a new client (a small pool for the SQL servers). No migration. */
export async function openAt(location: StoreLocation): Promise<SharedStore> {
  switch (location.backend) {
    case 'redis': {
      const client = new Redis(SERVICES.redis)
      return { store: new RedisStore({ client, namespace: location.namespace }), close: async () => void (await client.quit()) }
    }
    case 'postgres': {
      const pool = new pg.Pool({ ...SERVICES.postgres, max: 4 })
      return { store: new PostgresStore({ pool, table: location.table }), close: () => pool.end() }
    }
    case 'mariadb': {
      const pool = mysql.createPool({ ...SERVICES.mariadb, connectionLimit: 4 })
      return { store: new MySqlStore({ pool, table: location.table }), close: () => pool.end() }
    }
    case 'sqlite': {
      const database = new Database(location.file)
      database.pragma('journal_mode = WAL')
      return { store: new SqliteStore({ database, table: location.table }), close: async () => void database.close() }
    }
  }
}
