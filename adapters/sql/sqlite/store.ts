/**
 * SqliteStore: the SQL store on a `better-sqlite3` database, recognised by its shape (no driver import
 * unless `open()` is called), and the driver seam that runs every statement and transaction synchronously.
 */
import { importDriver } from '../../driver.js'
import { asStoreError } from '../../../src/store-failure.js'
import type { StoredKey } from '../../../src/store.js'
import { COLUMNS } from '../shared/columns.js'
import { invalidClient, resolveTable } from '../shared/options.js'
import { valuesToRecord } from '../shared/row-mapping.js'
import type { SqlDriver, SqlResult, SqlRow, SqlStatement } from '../shared/seams.js'
import { SqlStore } from '../shared/sql-store.js'
import { runStepsSync } from '../shared/transactions.js'
import { sqliteDialect } from './dialect.js'

/**
 * What the store uses of a `better-sqlite3` statement, as {@link SqliteDatabase.prepare} returns it.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import type { SqliteStatement } from 'keywarden/adapters/sql'
 *
 * const database = new Database('keys.db')
 * const statement: SqliteStatement = database.prepare('SELECT count(*) AS n FROM keywarden_keys')
 * statement.reader // true: run it with all()
 * ```
 */
export interface SqliteStatement {
  /** Whether the statement returns rows (run with `all`) or writes (run with `run`). */
  readonly reader: boolean
  /** Every row, as objects keyed by column name. */
  all(...params: unknown[]): unknown[]
  /** Runs a writing statement. */
  run(...params: unknown[]): {
    /** Rows changed. */
    changes: number
  }
  /** The first row, or `undefined`. Optional: without it (or without `raw`), the store reads with `all`. */
  get?(...params: unknown[]): unknown
  /**
   * Switches the statement to rows as arrays of column values (better-sqlite3's `raw(true)`), and
   * returns it. Optional; the store's verify read uses it, because an array per row is much cheaper
   * than an object keyed by 29 column names.
   */
  raw?(toggle?: boolean): SqliteStatement
}

/**
 * What the store uses of a `better-sqlite3` `Database`.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { SqliteStore, type SqliteDatabase } from 'keywarden/adapters/sql'
 *
 * const database: SqliteDatabase = new Database('keys.db')
 * const store = new SqliteStore({ database })
 * ```
 */
export interface SqliteDatabase {
  /** Compiles a statement; the store keeps the prepared statements of its fixed SQL. */
  prepare(sql: string): SqliteStatement
  /** Wraps `fn` in a transaction; the store runs it as `BEGIN IMMEDIATE`. */
  transaction<T>(fn: () => T): {
    /** Runs the transaction, taking the write lock at once. */
    immediate(): T
  }
}

/**
 * Options of {@link SqliteStore}.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { KeyManager } from 'keywarden'
 * import { SqliteStore } from 'keywarden/adapters/sql'
 *
 * const store = new SqliteStore({ database: new Database('keys.db'), table: 'api_keys' })
 * await store.migrate()
 * const keys = new KeyManager({ store })
 * ```
 */
export interface SqliteStoreOptions {
  /** An open `better-sqlite3` database. The store never closes it. */
  readonly database: SqliteDatabase
  /** Table name, 1-48 letters, digits or underscores; default `keywarden_keys`. */
  readonly table?: string
}

/** How long {@link SqliteStore.open}'s connection waits for another connection's lock, in milliseconds. */
const SQLITE_BUSY_TIMEOUT_MS = 1_000

/**
 * A `KeyStore` and `UsageStore` in SQLite through `better-sqlite3`. Every operation runs synchronously
 * to its end, so none interleaves with another on the same connection; quota inserts and consumptions
 * run in `BEGIN IMMEDIATE` transactions, which also serialise them with other connections and
 * processes. Counters and balances live in the table `<table>_usage`. Use WAL mode when several
 * processes share the file.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { KeyManager } from 'keywarden'
 * import { SqliteStore } from 'keywarden/adapters/sql'
 *
 * const database = new Database('keys.db')
 * database.pragma('journal_mode = WAL')
 * const store = new SqliteStore({ database })
 * await store.migrate() // or apply keywarden/adapters/sql/migrations/sqlite.sql with your migration tool
 * const keys = new KeyManager({ store, pepper: process.env.KEY_PEPPER })
 * ```
 */
export class SqliteStore extends SqlStore {
  readonly #readRow: (id: string) => readonly unknown[] | undefined

  /** Keeps the database and table; no I/O. Throws `ConfigError` for an invalid table name or database. */
  constructor(options: SqliteStoreOptions | SqliteDatabase) {
    // The database alone (`new SqliteStore(db)`) means the default table.
    const { database, table: name } =
      typeof (options as SqliteDatabase)?.prepare === 'function' ? { database: options as SqliteDatabase, table: undefined } : ((options ?? {}) as SqliteStoreOptions)
    const table = resolveTable(name)
    const dialect = sqliteDialect(table)
    const { driver, readRow } = sqliteConnection(database, dialect.selectById)
    super(table, dialect, driver)
    this.#readRow = readRow
  }

  /** The record with this ID, or `null` ({@link keywarden!KeyStore.get | KeyStore.get}): {@link SqliteStore.getSync}'s answer. */
  override get(id: string): Promise<StoredKey | null> {
    try {
      return Promise.resolve(this.getSync(id))
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * The record with this ID, or `null`, without a promise ({@link keywarden!KeyStore.getSync | KeyStore.getSync}):
   * better-sqlite3 reads synchronously anyway, so verify needs no microtask hop to see the row. One
   * statement, prepared on first use, returning the row as an array of values. A failure throws a
   * `StoreError` naming `get`, with the driver's error (masked) as its cause.
   *
   * @example
   * ```ts
   * import Database from 'better-sqlite3'
   * import { SqliteStore } from 'keywarden/adapters/sql'
   *
   * const store = new SqliteStore({ database: new Database('keys.db') })
   * await store.migrate()
   * const record = store.getSync(keyId) // what the KeyManager's verify reads
   * ```
   */
  getSync(id: string): StoredKey | null {
    try {
      const values = this.#readRow(id)
      return values === undefined ? null : valuesToRecord(values)
    } catch (error) {
      throw asStoreError('get', error)
    }
  }

  /**
   * Opens a `better-sqlite3` database file in WAL mode with a 1 s busy timeout (importing
   * `better-sqlite3`, which must be installed) and a store that owns it: `close()` closes the database.
   * Without the driver installed this throws a `ConfigError` saying what to install.
   *
   * @example
   * ```ts
   * import { SqliteStore } from 'keywarden/adapters/sql'
   *
   * const store = await SqliteStore.open('keys.db')
   * await store.migrate()
   * ```
   */
  static async open(filename: string, options: { table?: string } = {}): Promise<SqliteStore> {
    const Database = (await importDriver('better-sqlite3', 'better-sqlite3', 'SqliteStore.open')) as new (
      filename: string,
    ) => SqliteDatabase & { pragma(source: string): unknown; close(): unknown }
    const database = new Database(filename)
    database.pragma('journal_mode = WAL')
    // better-sqlite3 waits for a lock synchronously, stopping the whole event loop (5 s by default):
    // keep that short. A WAL write holds the lock for milliseconds; readers never wait for it.
    database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`)
    return new SqliteStore({ database, ...options }).ownClient(async () => void database.close())
  }
}

/** What a SqliteStore runs on its database: the shared driver seam, and the one read verify makes. */
interface SqliteConnection {
  readonly driver: SqlDriver
  /** The values of the row `selectById` finds, in `COLUMNS` order, or `undefined` when there is none. */
  readonly readRow: (id: string) => readonly unknown[] | undefined
}

function sqliteConnection(database: unknown, selectById: string): SqliteConnection {
  const driver = sqliteDriver(database)
  const db = database as SqliteDatabase
  // Prepared on first use, not in the constructor (no I/O there; the table may not exist yet).
  let read: ((id: string) => readonly unknown[] | undefined) | undefined
  const prepareRead = (): ((id: string) => readonly unknown[] | undefined) => {
    const statement = db.prepare(selectById)
    if (typeof statement.raw === 'function' && typeof statement.get === 'function') {
      const raw = statement.raw(true)
      return (id) => raw.get!(id) as readonly unknown[] | undefined
    }
    // A better-sqlite3 look-alike without raw rows: the row object, in column order.
    return (id) => {
      const row = statement.all(id)[0] as SqlRow | undefined
      return row === undefined ? undefined : COLUMNS.map((column) => row[column])
    }
  }
  return { driver, readRow: (id) => (read ??= prepareRead())(id) }
}

function sqliteDriver(database: unknown): SqlDriver {
  const candidate = database as Partial<SqliteDatabase> | undefined
  if (typeof candidate?.prepare !== 'function' || typeof candidate.transaction !== 'function') {
    invalidClient('database', "must be a better-sqlite3 Database (npm install better-sqlite3; new Database('keys.db')), or use SqliteStore.open(file)")
  }
  const db = database as SqliteDatabase
  // Statements are prepared once per SQL text; list queries vary with their filters, hence the bound.
  const prepared = new Map<string, SqliteStatement>()
  const run = ({ sql, params }: SqlStatement): SqlResult => {
    let statement = prepared.get(sql)
    if (statement === undefined) {
      if (prepared.size >= 256) prepared.clear()
      prepared.set(sql, (statement = db.prepare(sql)))
    }
    if (statement.reader) return { rows: statement.all(...params) as SqlRow[], affected: 0 }
    return { rows: [], affected: statement.run(...params).changes }
  }
  const runOnce = (sql: string): SqlResult => {
    const statement = db.prepare(sql)
    if (statement.reader) return { rows: statement.all() as SqlRow[], affected: 0 }
    return { rows: [], affected: statement.run().changes }
  }
  return {
    execute: async (statement) => run(statement),
    // The whole body runs synchronously inside BEGIN IMMEDIATE (a savepoint if a transaction is open).
    transaction: async (steps) => db.transaction(() => runStepsSync(steps, run)).immediate(),
    // One connection already; migrate()'s statements are not worth keeping prepared.
    session: (body) => body(async (sql) => runOnce(sql)),
  }
}
