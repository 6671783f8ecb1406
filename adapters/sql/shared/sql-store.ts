/**
 * The SqlStore class: the KeyStore operations every SQL database shares (the quota insert flow,
 * compare-and-set updates, retries, error wrapping), run through one dialect and one driver.
 */
import { callStore } from '../../../src/store-failure.js'
import type { InsertResult, KeyQuery, KeyStore, QuotaCheck, StoredKey, UpdateResult } from '../../../src/store.js'
import { listStatement } from './list-statement.js'
import { insertParams, readCount, rowToRecord, updateParams } from './row-mapping.js'
import type { SqlDialect, SqlDriver, SqlStatement, TransactionSteps } from './seams.js'

const MAX_ATTEMPTS = 5

/**
 * The shared implementation behind `PostgresStore`, `MySqlStore` and `SqliteStore`; use one of those.
 * Every method runs a fixed, parameterised statement (or, for `list`, one built from the query); a
 * driver error is rethrown as a {@link keywarden!StoreError | StoreError} naming only the operation, with the driver's error
 * as `cause`, so neither SQL nor bound values (hashes, metadata) reach the message.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { KeyManager } from 'keywarden'
 * import { SqliteStore, type SqlStore } from 'keywarden/adapters/sql'
 *
 * const store: SqlStore = new SqliteStore({ database: new Database('keys.db') })
 * await store.migrate()
 * const keys = new KeyManager({ store })
 * ```
 */
export abstract class SqlStore implements KeyStore {
  /** The table this store reads and writes (validated; quoted in every statement). */
  readonly table: string
  readonly #dialect: SqlDialect
  readonly #driver: SqlDriver
  #releaseOwnedClient: (() => Promise<void>) | undefined

  /**
   * Used by PostgresStore, MySqlStore and SqliteStore only: the dialect and driver seams are not public, so SqlStore is not
   * meant to be subclassed outside keywarden.
   *
   * @internal
   */
  protected constructor(table: string, dialect: SqlDialect, driver: SqlDriver) {
    this.table = table
    this.#dialect = dialect
    this.#driver = driver
  }

  /**
   * Makes `close()` end a client the store created itself (through a `connect`/`open` helper).
   *
   * @internal
   */
  protected ownClient(release: () => Promise<void>): this {
    this.#releaseOwnedClient = release
    return this
  }

  /**
   * Ends the client only if the store created it (`PostgresStore.connect`, `MySqlStore.connect`,
   * `SqliteStore.open`); a client you passed in is yours to close.
   */
  async close(): Promise<void> {
    const release = this.#releaseOwnedClient
    this.#releaseOwnedClient = undefined
    await release?.()
  }

  /**
   * Creates the table and its indexes if they do not exist; safe to run at every start. Run it from
   * one process at a time (e.g. at deploy), or apply the shipped migration file with your own
   * migration tool instead: `keywarden/adapters/sql/migrations/{postgres,mysql,sqlite}.sql`.
   *
   * @example
   * ```ts
   * import { KeyManager } from 'keywarden'
   * import { PostgresStore } from 'keywarden/adapters/sql'
   *
   * const store = new PostgresStore({ pool })
   * await store.migrate()
   * const keys = new KeyManager({ store })
   * ```
   */
  async migrate(): Promise<void> {
    await this.#wrap('migrate', async () => {
      for (const sql of this.#dialect.migration) await this.#driver.execute({ sql, params: [] })
    })
  }

  /**
   * Inserts the record ({@link KeyStore.insert}). With a quota: locks the owner (an advisory lock in
   * PostgreSQL, a lock row in MySQL, the write lock in SQLite), then checks the ID, counts the owner's
   * non-revoked keys in the quota's tenant (`NULL` counting the keys without a tenant) and inserts, in
   * one transaction. The lock covers the owner ID in every tenant: coarser than the count, so it still
   * serialises each count with its insert, and it needs no new lock key or lock table. A primary-key
   * violation returns `id_taken`.
   */
  async insert(record: StoredKey, quota: QuotaCheck | null): Promise<InsertResult> {
    return this.#wrap('insert', () =>
      this.#retrying(async () => {
        try {
          if (quota === null) {
            await this.#driver.execute(this.#insertStatement(record))
            return 'inserted'
          }
          const lock = this.#dialect.lockOwner(quota.ownerId)
          for (const statement of lock.before) await this.#driver.execute(statement)
          return await this.#driver.transaction(this.#insertUnderQuota(record, quota, lock.inside))
        } catch (error) {
          // A concurrent insert of the same ID won between our check (or our lack of one) and our insert.
          if (this.#dialect.isUniqueViolation(error)) return 'id_taken'
          throw error
        }
      }),
    )
  }

  /** The record with this ID, or `null` ({@link KeyStore.get}). */
  async get(id: string): Promise<StoredKey | null> {
    return this.#wrap('get', async () => {
      const { rows } = await this.#driver.execute({ sql: this.#dialect.selectById, params: [id] })
      return rows[0] === undefined ? null : rowToRecord(rows[0])
    })
  }

  /**
   * Compare-and-set ({@link KeyStore.update}): one `UPDATE … WHERE id = ? AND version = ?` that leaves
   * the immutable columns and `last_used_at` alone; only when it changes nothing does a
   * second read tell `not_found` from `conflict` (a row that vanishes in between reads as not found,
   * which is also what the update would have met a moment later).
   */
  async update(record: StoredKey, expectedVersion: number): Promise<UpdateResult> {
    return this.#wrap('update', () =>
      this.#retrying(async () => {
        const { affected } = await this.#driver.execute({ sql: this.#dialect.update, params: updateParams(record, expectedVersion, this.#dialect.boolean) })
        if (affected > 0) return 'updated'
        const { rows } = await this.#driver.execute({ sql: this.#dialect.existsById, params: [record.id] })
        return rows.length === 0 ? 'not_found' : 'conflict'
      }),
    )
  }

  /** Deletes the record; whether one existed ({@link KeyStore.delete}). */
  async delete(id: string): Promise<boolean> {
    return this.#wrap('delete', () =>
      this.#retrying(async () => (await this.#driver.execute({ sql: this.#dialect.deleteById, params: [id] })).affected > 0),
    )
  }

  /** One SELECT with every filter of `query`, in `(created_at, id)` order ({@link KeyStore.list}). */
  async list(query: KeyQuery): Promise<StoredKey[]> {
    return this.#wrap('list', async () => {
      const { rows } = await this.#driver.execute(listStatement(query, this.#dialect))
      return rows.map(rowToRecord)
    })
  }

  /** Raises `last_used_at` to `at`, never lowers it, leaves `version` alone ({@link KeyStore.touch}). */
  async touch(id: string, at: number): Promise<void> {
    await this.#wrap('touch', () => this.#retrying(() => this.#driver.execute({ sql: this.#dialect.touch, params: [at, id, at] })))
  }

  *#insertUnderQuota(record: StoredKey, quota: QuotaCheck, lock: readonly SqlStatement[]): TransactionSteps<InsertResult> {
    for (const statement of lock) yield statement
    // The ID check comes first, as the contract says: a taken ID is reported even when the quota is full.
    const existing = yield { sql: this.#dialect.existsById, params: [record.id] }
    if (existing.rows.length > 0) return 'id_taken'
    // Per owner within the tenant: the same owner ID in another tenant (or without one) is someone else.
    const counted = yield { sql: this.#dialect.countActiveByOwnerInTenant, params: [quota.ownerId, quota.tenantId] }
    if (readCount(counted.rows) >= quota.limit) return 'quota_exceeded'
    yield this.#insertStatement(record)
    return 'inserted'
  }

  #insertStatement(record: StoredKey): SqlStatement {
    return { sql: this.#dialect.insert, params: insertParams(record, this.#dialect.boolean) }
  }

  async #retrying<T>(operation: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation()
      } catch (error) {
        // Deadlocks and serialization failures are rolled back whole by the database, so the operation
        // can run again; a few attempts, then the error surfaces as a StoreError.
        if (attempt >= MAX_ATTEMPTS || !this.#dialect.isRetryable(error)) throw error
      }
    }
  }

  #wrap<T>(operation: string, run: () => Promise<T>): Promise<T> {
    return callStore(operation, run)
  }
}
