/**
 * PostgresStore: the SQL store on a `pg` pool or client, recognised by its shape (no driver import
 * unless `connect()` is called), and the driver seam that runs statements and transactions on it.
 */
import { importDriver } from '../../driver.js'
import { invalidClient, resolveTable } from '../shared/options.js'
import type { SqlDriver, SqlResult, SqlStatement } from '../shared/seams.js'
import { SqlStore } from '../shared/sql-store.js'
import { serialized, transact } from '../shared/transactions.js'
import { postgresDialect } from './dialect.js'

/**
 * What the store uses of a `pg` client: `pg.Pool`, `pg.Client` and `pg.PoolClient` all fit.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { PostgresStore, type PgQueryable } from 'keywarden/adapters/sql'
 *
 * const client = new pg.Client({ connectionString: process.env.DATABASE_URL })
 * await client.connect()
 * const connection: PgQueryable = client
 * const store = new PostgresStore({ pool: connection }) // one operation at a time on this connection
 * ```
 */
export interface PgQueryable {
  /** Runs one parameterised statement (`$1`, `$2`, ...). */
  query(text: string, values?: unknown[]): Promise<{
    /** The rows, keyed by column name. */
    rows: Record<string, unknown>[]
    /** Rows written (or returned); `null` for statements without a count. */
    rowCount: number | null
  }>
}

/**
 * What the store uses of a `pg.Pool`: each transaction checks out a client of its own.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { PostgresStore, type PgPool } from 'keywarden/adapters/sql'
 *
 * const pool: PgPool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
 * const store = new PostgresStore({ pool })
 * ```
 */
export interface PgPool extends PgQueryable {
  /**
   * A checked-out client. pg also reports a lost connection as an `error` event on it, which the pool
   * does not listen to while the client is out, so the store does (`on` and `removeListener` are
   * optional for pools whose clients never emit it).
   */
  connect(): Promise<
    PgQueryable & {
      /** Returns the client to the pool; `true` discards a connection left in an unknown state. */
      release(destroy?: boolean | Error): void
      /** Listens for a lost connection while the client is checked out. */
      on?(event: 'error', listener: (error: Error) => void): unknown
      /** Stops listening before the client goes back to the pool. */
      removeListener?(event: 'error', listener: (error: Error) => void): unknown
    }
  >
  /** Only checked for: it tells a pool from a single client, which also has `connect`. */
  readonly totalCount: number
}

/**
 * Options of {@link PostgresStore}.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { KeyManager } from 'keywarden'
 * import { PostgresStore } from 'keywarden/adapters/sql'
 *
 * const store = new PostgresStore({ pool: new pg.Pool(), table: 'api_keys' })
 * await store.migrate()
 * const keys = new KeyManager({ store })
 * ```
 */
export interface PostgresStoreOptions {
  /**
   * A `pg.Pool` (recommended), or a connected `pg.Client`, which is then used as one connection and
   * runs one store operation at a time. The store never ends it.
   */
  readonly pool: PgPool | PgQueryable
  /** Table name, 1-48 letters, digits or underscores; default `keywarden_keys`. */
  readonly table?: string
}

/** The time limits {@link PostgresStore.connect} sets unless given others, in milliseconds. */
const POSTGRES_TIMEOUTS = { connectionTimeoutMillis: 5_000, query_timeout: 5_000 } as const

/**
 * A `KeyStore` and `UsageStore` in PostgreSQL (9.6 or later; tested with 15) through `pg`. Quota
 * inserts serialise per owner with a transaction-scoped advisory lock; updates are one compare-and-set
 * `UPDATE`; a consumption (`consumeUsage`, and `consumeIfCurrent`, which also checks the key row) is
 * one call of the PL/pgSQL function `<table>_consume` that `migrate()` creates: it locks the counter
 * and balance rows of `<table>_usage` (`FOR UPDATE`, in key order), applies the arithmetic and writes,
 * in one round trip. Works at the default READ COMMITTED isolation (and retries deadlocks and
 * serialization failures).
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { KeyManager } from 'keywarden'
 * import { PostgresStore } from 'keywarden/adapters/sql'
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const store = new PostgresStore({ pool })
 * await store.migrate() // or apply keywarden/adapters/sql/migrations/postgres.sql with your migration tool
 * const keys = new KeyManager({ store, pepper: process.env.KEY_PEPPER })
 * ```
 */
export class PostgresStore extends SqlStore {
  /** Keeps the client and table; no I/O. Throws `ConfigError` for an invalid table name or client. */
  constructor(options: PostgresStoreOptions | PgPool | PgQueryable) {
    // The pool alone (`new PostgresStore(pool)`) means the default table.
    const { pool, table: name } = typeof (options as PgQueryable)?.query === 'function' ? { pool: options as PgQueryable, table: undefined } : ((options ?? {}) as PostgresStoreOptions)
    const table = resolveTable(name)
    super(table, postgresDialect(table), postgresDriver(pool))
  }

  /**
   * Creates a `pg.Pool` (importing `pg`, which must be installed) and a store that owns it:
   * `close()` ends the pool. Without `pg` installed this throws a `ConfigError` saying what to install.
   * Unless the options say otherwise, connecting and each query are limited to 5 s
   * (`connectionTimeoutMillis`, `query_timeout`).
   *
   * @example
   * ```ts
   * import { PostgresStore } from 'keywarden/adapters/sql'
   *
   * const store = await PostgresStore.connect(process.env.DATABASE_URL!)
   * await store.migrate()
   * ```
   */
  static async connect(connection: string | Record<string, unknown>, options: { table?: string } = {}): Promise<PostgresStore> {
    const pg = (await importDriver('pg', 'pg', 'PostgresStore.connect')) as { Pool: new (config: object) => PgPool & { end(): Promise<void> } }
    // pg waits forever by default, for a connection and for an answer: on a stalled link every call
    // would hang. Options given in an object take precedence.
    const pool = new pg.Pool({ ...POSTGRES_TIMEOUTS, ...(typeof connection === 'string' ? { connectionString: connection } : connection) })
    return new PostgresStore({ pool, ...options }).ownClient(() => pool.end())
  }
}

async function run(client: PgQueryable, { sql, params }: SqlStatement): Promise<SqlResult> {
  const result = await client.query(sql, [...params])
  return { rows: result.rows ?? [], affected: result.rowCount ?? 0 }
}

function connection(client: PgQueryable) {
  return {
    begin: () => client.query('BEGIN'),
    commit: () => client.query('COMMIT'),
    rollback: () => client.query('ROLLBACK'),
    execute: (statement: SqlStatement) => run(client, statement),
  }
}

function postgresDriver(pool: unknown): SqlDriver {
  if (typeof (pool as PgQueryable | undefined)?.query !== 'function') invalidClient('pool', 'must be a pg Pool or Client (npm install pg; new pg.Pool(...)), or use PostgresStore.connect(url)')
  const client = pool as PgQueryable
  if (typeof (pool as PgPool).connect === 'function' && typeof (pool as PgPool).totalCount === 'number') {
    const pooled = pool as PgPool
    return {
      execute: (statement) => run(pooled, statement),
      transaction: async (steps) => {
        const checkedOut = await pooled.connect()
        let broken = false
        // Without a listener, a connection lost mid-transaction (an RST) would crash the process with an
        // unhandled 'error' event, although the failing statement already rejects.
        const onError = () => void (broken = true)
        checkedOut.on?.('error', onError)
        try {
          return await transact(connection(checkedOut), steps, () => (broken = true))
        } finally {
          checkedOut.removeListener?.('error', onError)
          checkedOut.release(broken)
        }
      },
      session: async (body) => {
        const checkedOut = await pooled.connect()
        let broken = false
        const onError = () => void (broken = true)
        checkedOut.on?.('error', onError)
        try {
          return await body((sql) => run(checkedOut, { sql, params: [] }))
        } finally {
          checkedOut.removeListener?.('error', onError)
          checkedOut.release(broken)
        }
      },
    }
  }
  // A single connection: a transaction must not interleave with other statements on it.
  const serial = serialized()
  return {
    execute: (statement) => serial(() => run(client, statement)),
    transaction: (steps) => serial(() => transact(connection(client), steps)),
    session: (body) => serial(() => body((sql) => run(client, { sql, params: [] }))),
  }
}
