/**
 * The SqlStore class: the KeyStore and UsageStore operations every SQL database shares (the quota
 * insert flow, compare-and-set updates, locked usage transactions, retries, error wrapping), run
 * through one dialect and one driver.
 */
import type { CreditAdjustment, CreditsAdjusted, UsageOutcome, UsageRequest, UsageStore } from '../../../src/limits/usage-store.js'
import { applyUsage } from '../../../src/limits/usage-arithmetic.js'
import { callStore } from '../../../src/store-failure.js'
import type { InsertResult, KeyQuery, KeyStore, QuotaCheck, StoredKey, UpdateResult } from '../../../src/store.js'
import { listStatement } from './list-statement.js'
import { insertParams, readCount, rowToRecord, updateParams } from './row-mapping.js'
import type { SqlDialect, SqlDriver, SqlStatement, TransactionSteps } from './seams.js'
import { adjustSteps, consumeSteps, evaluateUsage, usageKeys } from './usage.js'

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
export abstract class SqlStore implements KeyStore, UsageStore {
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
   * Creates the keys table, its indexes and the usage table `<table>_usage` if they do not exist, and
   * adds the columns 0.2.0 introduced (`policy`, `has_credits`) to a table created by 0.1.0; safe to
   * run at every start, on a fresh database or an old one. Run it from one process at a time (e.g. at
   * deploy), or apply the shipped migration file with your own migration tool instead:
   * `keywarden/adapters/sql/migrations/{postgres,mysql,sqlite}.sql`. All statements run on one
   * connection.
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
    await this.#wrap('migrate', () =>
      this.#driver.session(async (execute) => {
        for (const { sql, addsColumn } of this.#dialect.migration) {
          try {
            await execute(sql)
          } catch (error) {
            // SQLite has no ADD COLUMN IF NOT EXISTS: "duplicate column name" means the column is there.
            if (!(addsColumn === true && this.#dialect.isDuplicateColumn(error))) throw error
          }
        }
      }),
    )
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

  /**
   * Applies one {@link UsageRequest} ({@link UsageStore.consumeUsage}) in one transaction: locks the
   * rows of every counter and of the balance (`SELECT … FOR UPDATE` in key order on PostgreSQL and
   * MySQL; SQLite's `BEGIN IMMEDIATE` takes the database's write lock), reads absent ones as `null`,
   * decides with the shared arithmetic and writes the states it returns. Two transactions that both
   * found a row absent race to insert it: the loser's insert fails (a unique violation, or a deadlock
   * on MySQL) and its whole consumption runs again, now finding the row. A dry run (`commit: false`)
   * is one unlocked read, and writes (and creates) nothing.
   *
   * @example
   * ```ts
   * import { PostgresStore } from 'keywarden/adapters/sql'
   *
   * const store = new PostgresStore({ pool })
   * const outcome = await store.consumeUsage({
   *   now: Date.now(),
   *   cost: 1,
   *   commit: true,
   *   rate: [{ id: 'rate:free:minute:key:5hJ2kQ9xWmTz3LbN', algorithm: 'fixed-window', limit: 60, capacity: 60, windowMs: 60_000 }],
   *   credits: null,
   * })
   * if (outcome.refused !== null) console.info('refused:', outcome.refused)
   * ```
   */
  async consumeUsage(request: UsageRequest): Promise<UsageOutcome> {
    return this.#wrap('consumeUsage', async () => {
      const keys = usageKeys(request)
      if (keys.length === 0) return applyUsage(request, [], null).outcome
      if (!request.commit) return evaluateUsage(request, (await this.#driver.execute(this.#dialect.usage.read(keys, false))).rows)
      return this.#retrying(() => this.#driver.transaction(consumeSteps(this.#dialect.usage, request, keys)), true)
    })
  }

  /**
   * Applies one {@link CreditAdjustment} ({@link UsageStore.adjustCredits}) in one transaction: locks
   * and reads the balance (absent: the pool's `initial`), refills it when due, sets or adds, writes it.
   *
   * @example
   * ```ts
   * import { PostgresStore } from 'keywarden/adapters/sql'
   *
   * const store = new PostgresStore({ pool })
   * const { previous, remaining } = await store.adjustCredits({
   *   pool: { id: 'credits:key:5hJ2kQ9xWmTz3LbN', initial: 0, refill: null },
   *   now: Date.now(),
   *   mode: 'add',
   *   amount: 1000,
   * })
   * ```
   */
  async adjustCredits(change: CreditAdjustment): Promise<CreditsAdjusted> {
    return this.#wrap('adjustCredits', () => this.#retrying(() => this.#driver.transaction(adjustSteps(this.#dialect.usage, change)), true))
  }

  /**
   * Deletes the counter states that stopped mattering at `now` (a full bucket, a past window: stored
   * `expires_at <= now`) and returns how many went ({@link UsageStore.purgeUsage}). Balances stay.
   * Not run on its own: call it from a periodic job, e.g. hourly. Deleting a key leaves its counters
   * and balance in place; this purge removes the counters once they expire.
   *
   * @example
   * ```ts
   * import { PostgresStore } from 'keywarden/adapters/sql'
   *
   * const store = new PostgresStore({ pool })
   * setInterval(() => void store.purgeUsage(Date.now()).catch(console.error), 3_600_000).unref()
   * ```
   */
  async purgeUsage(now: number): Promise<number> {
    return this.#wrap('purgeUsage', () => this.#retrying(async () => (await this.#driver.execute(this.#dialect.usage.purge(now))).affected))
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

  /** `orUniqueViolation`: for the usage transactions, whose insert of a row found absent can lose a race. */
  async #retrying<T>(operation: () => Promise<T>, orUniqueViolation = false): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation()
      } catch (error) {
        // Deadlocks and serialization failures are rolled back whole by the database, so the operation
        // can run again; a few attempts, then the error surfaces as a StoreError.
        const retryable = this.#dialect.isRetryable(error) || (orUniqueViolation && this.#dialect.isUniqueViolation(error))
        if (attempt >= MAX_ATTEMPTS || !retryable) throw error
      }
    }
  }

  #wrap<T>(operation: string, run: () => Promise<T>): Promise<T> {
    return callStore(operation, run)
  }
}
