/**
 * MySqlStore: the SQL store on a `mysql2/promise` pool or connection, recognised by its shape (no
 * driver import unless `connect()` is called), and the driver seam that runs statements and
 * transactions on it.
 */
import { timerDurationOption, type Duration } from '../../../src/policy/duration.js'
import { importDriver } from '../../driver.js'
import { invalidClient, resolveTable } from '../shared/options.js'
import type { SqlDriver, SqlResult, SqlRow, SqlStatement } from '../shared/seams.js'
import { SqlStore } from '../shared/sql-store.js'
import { serialized, transact } from '../shared/transactions.js'
import { mysqlDialect } from './dialect.js'
import { withQueryTimeout } from './query-timeout.js'

/**
 * What the store uses of a `mysql2/promise` connection. Statements run through `execute` (server-side prepared).
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise'
 * import { MySqlStore, type MySqlConnection } from 'keywarden/adapters/sql'
 *
 * const connection: MySqlConnection = await mysql.createConnection(process.env.DATABASE_URL!)
 * const store = new MySqlStore({ pool: connection }) // one operation at a time on this connection
 * ```
 */
export interface MySqlConnection {
  /** Runs one prepared statement (`?` placeholders); resolves with `[rows or result header, fields]`. */
  execute(sql: string, values?: (string | number | boolean | null)[]): Promise<[unknown, unknown]>
  /**
   * Runs one statement in the text protocol. Only `migrate()` uses it (MySQL refuses `PREPARE` and
   * `EXECUTE` as prepared statements); mysql2 has it, a client without it cannot migrate.
   */
  query?(sql: string): Promise<[unknown, unknown]>
  /** `START TRANSACTION`. */
  beginTransaction(): Promise<void>
  /** `COMMIT`. */
  commit(): Promise<void>
  /** `ROLLBACK`. */
  rollback(): Promise<void>
}

/**
 * What the store uses of a `mysql2/promise` `Pool`: each transaction checks out a connection of its own.
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise'
 * import { MySqlStore, type MySqlPool } from 'keywarden/adapters/sql'
 *
 * const pool: MySqlPool = mysql.createPool({ uri: process.env.DATABASE_URL, connectionLimit: 10 })
 * const store = new MySqlStore({ pool })
 * ```
 */
export interface MySqlPool {
  /** Runs one prepared statement outside a transaction, on any pooled connection. */
  execute(sql: string, values?: (string | number | boolean | null)[]): Promise<[unknown, unknown]>
  /** Checks out a connection for one transaction (or for `migrate()`). */
  getConnection(): Promise<
    MySqlConnection & {
      /** Returns the connection to the pool. */
      release(): void
      /** Discards a connection left in an unknown state (its rollback failed). */
      destroy(): void
    }
  >
}

/**
 * Options of {@link MySqlStore}.
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise'
 * import { KeyManager } from 'keywarden'
 * import { MySqlStore } from 'keywarden/adapters/sql'
 *
 * const store = new MySqlStore({ pool: mysql.createPool(process.env.DATABASE_URL!), table: 'api_keys' }) // and api_keys_locks
 * await store.migrate()
 * const keys = new KeyManager({ store })
 * ```
 */
export interface MySqlStoreOptions {
  /**
   * A `mysql2/promise` pool (recommended; `mysql.createPool(...)` from `mysql2/promise`, or
   * `pool.promise()`), or one promise connection, which then runs one store operation at a time.
   * The connection character set must be utf8mb4 (mysql2's default). The store never ends it.
   */
  readonly pool: MySqlPool | MySqlConnection
  /** Table name, 1-48 letters, digits or underscores; default `keywarden_keys` (plus `<table>_locks`). */
  readonly table?: string
}

/** The time limits {@link MySqlStore.connect} sets unless given others, in milliseconds. */
const MYSQL_TIMEOUTS = { connectTimeout: 5_000, queryTimeout: 5_000 } as const

/**
 * A `KeyStore` and `UsageStore` in MySQL (5.7 or later) or MariaDB (10.3 or later; tested with 10.11)
 * through `mysql2`. Quota inserts serialise per owner by locking a row of the companion table
 * `<table>_locks`; updates are one compare-and-set `UPDATE`; a consumption locks its counter and
 * balance rows (`SELECT … FOR UPDATE`) in the companion table `<table>_usage`. Works at the default
 * REPEATABLE READ isolation (and retries deadlocks).
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise'
 * import { KeyManager } from 'keywarden'
 * import { MySqlStore } from 'keywarden/adapters/sql'
 *
 * const pool = mysql.createPool({ uri: process.env.DATABASE_URL, connectionLimit: 10 })
 * const store = new MySqlStore({ pool })
 * await store.migrate() // or apply keywarden/adapters/sql/migrations/mysql.sql with your migration tool
 * const keys = new KeyManager({ store, pepper: process.env.KEY_PEPPER })
 * ```
 */
export class MySqlStore extends SqlStore {
  /** Keeps the client and table; no I/O. Throws `ConfigError` for an invalid table name or client. */
  constructor(options: MySqlStoreOptions | MySqlPool | MySqlConnection) {
    // The pool alone (`new MySqlStore(pool)`) means the default table.
    const { pool, table: name } =
      typeof (options as MySqlConnection)?.execute === 'function' ? { pool: options as MySqlPool, table: undefined } : ((options ?? {}) as MySqlStoreOptions)
    const table = resolveTable(name)
    super(table, mysqlDialect(table), mysqlDriver(pool))
  }

  /**
   * Creates a `mysql2/promise` pool (importing `mysql2`, which must be installed) and a store that owns
   * it: `close()` ends the pool. Without `mysql2` installed this throws a `ConfigError` saying what to install.
   * Unless told otherwise, connecting and each statement are limited to 5 s: `connectTimeout` (mysql2's
   * option, in the pool config or the URL's query string) and `queryTimeout` (a duration, or `false` for
   * no limit), which wraps the pool with {@link withQueryTimeout}. An invalid `queryTimeout` or `table`
   * throws a `ConfigError`.
   *
   * @example
   * ```ts
   * import { MySqlStore } from 'keywarden/adapters/sql'
   *
   * const store = await MySqlStore.connect('mysql://root@127.0.0.1:3306/app')
   * await store.migrate()
   *
   * // Longer limits: connectTimeout goes to mysql2, queryTimeout (or false) to the store.
   * const reporting = await MySqlStore.connect({ uri: process.env.DATABASE_URL, connectTimeout: 10_000 }, { queryTimeout: '30s' })
   * ```
   */
  static async connect(connection: string | Record<string, unknown>, options: { table?: string; queryTimeout?: Duration | false } = {}): Promise<MySqlStore> {
    const { queryTimeout = MYSQL_TIMEOUTS.queryTimeout, ...storeOptions } = options ?? {}
    if (queryTimeout !== false) timerDurationOption(queryTimeout, 'queryTimeout', ', or false for no limit')
    const table = resolveTable(storeOptions.table)
    const mysql = (await importDriver('mysql2/promise', 'mysql2', 'MySqlStore.connect')) as {
      createPool(config: object): MySqlPool & { end(): Promise<void> }
    }
    // mysql2 has no query timeout of its own: on a stalled link every call would hang until TCP gives
    // up. Options given in an object (or the URL's query string) take precedence.
    const pool = mysql.createPool(poolConfig(connection))
    const client = queryTimeout === false ? pool : withQueryTimeout(pool, queryTimeout)
    return new MySqlStore({ pool: client, table }).ownClient(() => pool.end())
  }
}

/** The pool config of {@link MySqlStore.connect}: `connectTimeout` 5 s unless `connection` sets it. */
function poolConfig(connection: string | Record<string, unknown>): Record<string, unknown> {
  const config = typeof connection === 'string' ? { uri: connection } : connection
  // mysql2 lets options set in the object win over the URL's, so a `?connectTimeout=` must be left alone.
  if (urlSetsConnectTimeout(config.uri)) return { ...config }
  return { connectTimeout: MYSQL_TIMEOUTS.connectTimeout, ...config }
}

function urlSetsConnectTimeout(uri: unknown): boolean {
  if (typeof uri !== 'string') return false
  try {
    return new URL(uri).searchParams.has('connectTimeout')
  } catch {
    return false // mysql2 reports the malformed URL
  }
}

async function run(client: Pick<MySqlConnection, 'execute'>, { sql, params }: SqlStatement): Promise<SqlResult> {
  return result(await client.execute(sql, [...params]))
}

/** Runs `sql` in the text protocol, for migrate(). */
async function runText(client: Pick<MySqlConnection, 'query'>, sql: string): Promise<SqlResult> {
  if (typeof client.query !== 'function') {
    throw new TypeError('MySqlStore.migrate() needs query() on the client (mysql2/promise pools and connections have it): MySQL runs PREPARE only in the text protocol')
  }
  return result(await client.query(sql))
}

function result([answer]: [unknown, unknown]): SqlResult {
  // A query answers rows; any other statement a ResultSetHeader.
  if (Array.isArray(answer)) return { rows: answer as SqlRow[], affected: 0 }
  return { rows: [], affected: Number((answer as { affectedRows?: number }).affectedRows ?? 0) }
}

function connection(client: MySqlConnection) {
  return {
    begin: () => client.beginTransaction(),
    commit: () => client.commit(),
    rollback: () => client.rollback(),
    execute: (statement: SqlStatement) => run(client, statement),
  }
}

function mysqlDriver(pool: unknown): SqlDriver {
  const candidate = pool as Partial<MySqlPool & MySqlConnection & { promise: unknown }> | undefined
  if (typeof candidate?.promise === 'function') {
    invalidClient('pool', 'must be a mysql2/promise pool or connection; convert a callback-style one with .promise()')
  }
  if (typeof candidate?.execute !== 'function') invalidClient('pool', 'must be a mysql2/promise pool or connection (npm install mysql2; mysql.createPool(...)), or use MySqlStore.connect(url)')
  if (typeof candidate.getConnection === 'function') {
    const pooled = pool as MySqlPool
    return {
      execute: (statement) => run(pooled, statement),
      transaction: async (steps) => {
        const checkedOut = await pooled.getConnection()
        let broken = false
        try {
          return await transact(connection(checkedOut), steps, () => (broken = true))
        } finally {
          if (broken) checkedOut.destroy()
          else checkedOut.release()
        }
      },
      session: async (body) => {
        const checkedOut = await pooled.getConnection()
        try {
          return await body((sql) => runText(checkedOut, sql))
        } finally {
          checkedOut.release()
        }
      },
    }
  }
  if (typeof candidate.beginTransaction !== 'function') invalidClient('pool', 'must be a mysql2/promise pool or connection')
  // A single connection: a transaction must not interleave with other statements on it.
  const client = pool as MySqlConnection
  const serial = serialized()
  return {
    execute: (statement) => serial(() => run(client, statement)),
    transaction: (steps) => serial(() => transact(connection(client), steps)),
    session: (body) => serial(() => body((sql) => runText(client, sql))),
  }
}
