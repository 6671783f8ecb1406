/**
 * The SqlStore class: the KeyStore and UsageStore operations every SQL database shares (the quota
 * insert flow, compare-and-set updates, locked usage transactions, retries, error wrapping), run
 * through one dialect and one driver.
 */
import type { CreditAdjustment, CreditsAdjusted, GuardedUsageOutcome, GuardedUsageRequest, UsageOutcome, UsageRequest, UsageStore } from '../../../src/limits/usage-store.js'
import { applyUsage } from '../../../src/limits/usage-arithmetic.js'
import { callStore } from '../../../src/store-failure.js'
import type { InsertResult, KeyQuery, KeyStore, QuotaCheck, StoredKey, UpdateResult } from '../../../src/store.js'
import type { AuditQuery, AuditRecord, AuditStore } from '../../../src/audit/audit-store.js'
import { rowToEntry } from './audit.js'
import { listStatement } from './list-statement.js'
import { insertParams, readCount, rowToRecord, updateParams } from './row-mapping.js'
import type { SqlDialect, SqlDriver, SqlStatement, TransactionSteps, UsageKey } from './seams.js'
import { adjustSteps, consumeSteps, evaluateGuarded, evaluateUsage, guardedSteps, readConsumed, RunAgain, usageKeys } from './usage.js'

const MAX_ATTEMPTS = 8

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
export abstract class SqlStore implements KeyStore, UsageStore, AuditStore {
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
   * adds the columns 0.2.0 introduced (`policy`, `has_credits`) to a table created by 0.1.0; on
   * PostgreSQL it also creates (or replaces) the function `<table>_consume` that consumptions call.
   * Safe to run at every start, on a fresh database or an old one. Run it from one process at a time (e.g. at
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
  async insert(record: StoredKey, quota: QuotaCheck | null, audit?: AuditRecord): Promise<InsertResult> {
    return this.#wrap('insert', () =>
      this.#retrying(async () => {
        try {
          if (quota === null) {
            // One statement without an entry; with one, the key and its entry commit together.
            if (audit === undefined) await this.#driver.execute(this.#insertStatement(record))
            else await this.#driver.transaction(this.#inOrder([this.#insertStatement(record), this.#dialect.audit.insert(audit)]))
            return 'inserted'
          }
          const lock = this.#dialect.lockOwner(quota.ownerId)
          for (const statement of lock.before) await this.#driver.execute(statement)
          return await this.#driver.transaction(this.#insertUnderQuota(record, quota, lock.inside, audit))
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
  async update(record: StoredKey, expectedVersion: number, audit?: AuditRecord): Promise<UpdateResult> {
    if (audit !== undefined) return this.#wrap('update', () => this.#retrying(() => this.#driver.transaction(this.#updateWithEntry(record, expectedVersion, audit))))
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
  async delete(id: string, audit?: AuditRecord): Promise<boolean> {
    if (audit !== undefined) return this.#wrap('delete', () => this.#retrying(() => this.#driver.transaction(this.#deleteWithEntry(id, audit))))
    return this.#wrap('delete', () =>
      this.#retrying(async () => (await this.#driver.execute({ sql: this.#dialect.deleteById, params: [id] })).affected > 0),
    )
  }

  async listAudit(query: AuditQuery): Promise<AuditRecord[]> {
    return this.#wrap('listAudit', async () => (await this.#driver.execute(this.#dialect.audit.list(query))).rows.map(rowToEntry))
  }

  async pruneAudit(before: number, limit: number): Promise<number> {
    return this.#wrap('pruneAudit', () => this.#retrying(async () => (await this.#driver.execute(this.#dialect.audit.prune(before, limit))).affected))
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
   * Applies one {@link UsageRequest} ({@link UsageStore.consumeUsage}) atomically: locks the rows of
   * every counter and of the balance (`FOR UPDATE` in key order on PostgreSQL and MySQL; SQLite's
   * `BEGIN IMMEDIATE` takes the database's write lock), reads absent ones as `null`, decides with the
   * shared arithmetic and writes the states it returns. On PostgreSQL that is one statement, the
   * function `<table>_consume` created by `migrate()` (the same arithmetic, run on the server); on
   * MySQL and SQLite one transaction. Two consumptions that both found a row absent race to insert it:
   * the loser's insert fails with a unique violation and its whole consumption runs again, now finding
   * the row. (On MySQL, where a locking read of an absent row locks a gap, a consumption that must
   * insert rows rolls back and inserts them from a second transaction that lock-reads only the rows
   * that exist.) A dry run (`commit: false`) is one unlocked read, and writes (and creates) nothing.
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
      const { consume } = this.#dialect.usage
      if (consume !== undefined) {
        const answer = await this.#oneStatement(() => consume(request, null), request)
        if (!answer.applied) throw new TypeError('The consume function refused an unguarded consumption')
        return answer.outcome
      }
      return this.#usageTransaction((absent) => consumeSteps(this.#dialect.usage, request, keys, absent))
    })
  }

  /**
   * A {@link GuardedUsageRequest} ({@link UsageStore.consumeIfCurrent}): reads the key row and
   * consumes in one atomic step, so a limited verify costs one store call instead of a `get` and a
   * `consumeUsage`. The guard is checked on the key row as read inside that step, locked against
   * updates and deletes until it ends; when it fails nothing is written and the row comes back as
   * `get` maps it (`null` when there is none). Hashes are compared in constant time.
   *
   * - PostgreSQL: one statement, the function `<table>_consume` that `migrate()` creates (the key
   *   row locked `FOR NO KEY UPDATE`, guard, arithmetic and writes on the server; see the shipped
   *   migration). Run again after a lost race to insert a row, a deadlock or a serialization failure.
   * - MySQL: one transaction: the key row `LOCK IN SHARE MODE` (InnoDB queues a waiting update ahead
   *   of later share locks), then the consumption as {@link SqlStore.consumeUsage} runs it (one
   *   locking read, one `UPDATE` for all the rows).
   * - SQLite: the same reads and writes inside `BEGIN IMMEDIATE`, which holds every other writer off.
   *
   * A dry run (`commit: false`) locks and writes nothing.
   *
   * @example
   * ```ts
   * import { PostgresStore } from 'keywarden/adapters/sql'
   *
   * declare const presentedHash: string // the keyed hash of the secret presented with keyId
   * const store = new PostgresStore({ pool })
   * const answer = await store.consumeIfCurrent({
   *   now: Date.now(),
   *   cost: 1,
   *   commit: true,
   *   rate: [{ id: 'rate:free:minute:key:5hJ2kQ9xWmTz3LbN', algorithm: 'fixed-window', limit: 60, capacity: 60, windowMs: 60_000 }],
   *   credits: null,
   *   keyId,
   *   version: 3,
   *   hash: presentedHash,
   * })
   * if (!answer.applied) console.info('the key changed since it was last seen', answer.record?.version)
   * else if (answer.outcome.refused !== null) console.info('refused:', answer.outcome.refused)
   * ```
   */
  async consumeIfCurrent(request: GuardedUsageRequest): Promise<GuardedUsageOutcome> {
    return this.#wrap('consumeIfCurrent', async () => {
      const { consume } = this.#dialect.usage
      if (consume !== undefined) {
        const guard = { keyId: request.keyId, version: request.version, hash: request.hash }
        return this.#oneStatement(() => consume(request, guard), request)
      }
      const keys = usageKeys(request)
      if (!request.commit) {
        const keyRead = { sql: this.#dialect.selectById, params: [request.keyId] }
        return evaluateGuarded((statement) => this.#driver.execute(statement), keyRead, this.#dialect.usage, request, keys)
      }
      const keyRead = { sql: this.#dialect.selectByIdLocked, params: [request.keyId] }
      return this.#usageTransaction((absent) => guardedSteps(keyRead, this.#dialect.usage, request, keys, absent))
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
    return this.#wrap('adjustCredits', () => this.#usageTransaction((absent) => this.#adjustWithEntry(change, absent)))
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

  *#insertUnderQuota(record: StoredKey, quota: QuotaCheck, lock: readonly SqlStatement[], audit: AuditRecord | undefined): TransactionSteps<InsertResult> {
    for (const statement of lock) yield statement
    // The ID check comes first, as the contract says: a taken ID is reported even when the quota is full.
    const existing = yield { sql: this.#dialect.existsById, params: [record.id] }
    if (existing.rows.length > 0) return 'id_taken'
    // Per owner within the tenant: the same owner ID in another tenant (or without one) is someone else.
    const counted = yield { sql: this.#dialect.countActiveByOwnerInTenant, params: [quota.ownerId, quota.tenantId] }
    if (readCount(counted.rows) >= quota.limit) return 'quota_exceeded'
    yield this.#insertStatement(record)
    if (audit !== undefined) yield this.#dialect.audit.insert(audit)
    return 'inserted'
  }

  *#inOrder(statements: readonly SqlStatement[]): TransactionSteps<void> {
    for (const statement of statements) yield statement
  }

  *#updateWithEntry(record: StoredKey, expectedVersion: number, audit: AuditRecord): TransactionSteps<UpdateResult> {
    const { affected } = yield { sql: this.#dialect.update, params: updateParams(record, expectedVersion, this.#dialect.boolean) }
    if (affected === 0) {
      const { rows } = yield { sql: this.#dialect.existsById, params: [record.id] }
      return rows.length === 0 ? 'not_found' : 'conflict'
    }
    yield this.#dialect.audit.insert(audit)
    return 'updated'
  }

  *#deleteWithEntry(id: string, audit: AuditRecord): TransactionSteps<boolean> {
    const { affected } = yield { sql: this.#dialect.deleteById, params: [id] }
    if (affected === 0) return false
    yield this.#dialect.audit.insert(audit)
    return true
  }

  *#adjustWithEntry(change: CreditAdjustment, absent: readonly UsageKey[] | null): TransactionSteps<CreditsAdjusted> {
    const adjusted = yield* adjustSteps(this.#dialect.usage, change, absent)
    if (change.audit !== undefined) yield this.#dialect.audit.insert({ ...change.audit, changes: { credits: { from: adjusted.previous, to: adjusted.remaining } } })
    return adjusted
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
        // Jittered, growing pauses: transactions that deadlocked once (a key and its audit entry
        // racing a delete of it) would otherwise meet again at once.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** attempt))
      }
    }
  }

  /**
   * Runs a usage transaction; runs it again after a deadlock or a serialization failure (as #retrying
   * does), after a unique violation (its insert of a row found absent lost the race), and when the
   * body asks for it ({@link RunAgain}).
   */
  async #usageTransaction<T>(steps: (absent: readonly UsageKey[] | null) => TransactionSteps<T>): Promise<T> {
    let absent: readonly UsageKey[] | null = null
    for (let failures = 0, reruns = 0; ; ) {
      try {
        return await this.#driver.transaction(steps(absent))
      } catch (error) {
        if (error instanceof RunAgain && ++reruns < MAX_ATTEMPTS) {
          absent = error.absent
          continue
        }
        const retryable = this.#dialect.isRetryable(error) || this.#dialect.isUniqueViolation(error)
        if (++failures >= MAX_ATTEMPTS || !retryable) throw error
        absent = null
      }
    }
  }

  /**
   * Runs a one-statement consumption (its own implicit transaction); runs it again, as
   * {@link SqlStore.#usageTransaction} does, after a unique violation (its insert of a row found
   * absent lost the race), a deadlock or a serialization failure.
   */
  async #oneStatement(statement: () => SqlStatement, request: UsageRequest): Promise<GuardedUsageOutcome> {
    for (let failures = 1; ; failures++) {
      try {
        return readConsumed((await this.#driver.execute(statement())).rows[0], request)
      } catch (error) {
        const retryable = this.#dialect.isRetryable(error) || this.#dialect.isUniqueViolation(error)
        if (failures >= MAX_ATTEMPTS || !retryable) throw error
      }
    }
  }

  #wrap<T>(operation: string, run: () => Promise<T>): Promise<T> {
    return callStore(operation, run)
  }
}
