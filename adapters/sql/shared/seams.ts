/**
 * The two seams between the shared SQL store and one database: the dialect (every statement that
 * database needs, and how to read its errors) and the driver (how to run a statement and a transaction
 * on one client library). Types only.
 */

import type { UsageRequest } from '../../../src/limits/usage-store.js'
import type { AuditStatements } from './audit.js'

/** A value bound to a statement parameter. */
export type SqlValue = string | number | boolean | null

/** One row as a driver returns it, keyed by column name. */
export type SqlRow = Record<string, unknown>

/** One parameterised statement. */
export interface SqlStatement {
  readonly sql: string
  readonly params: readonly SqlValue[]
}

/** What a statement returned: its rows (for a query) and the number of rows it wrote (otherwise). */
export interface SqlResult {
  readonly rows: readonly SqlRow[]
  readonly affected: number
}

/**
 * A transaction body as a sequence of statements: each `yield` runs one statement and resumes with its
 * result; the return value is the transaction's. A generator, rather than an async function, so one body
 * serves both asynchronous drivers (pg, mysql2 await each step) and better-sqlite3, which must run the
 * whole body synchronously: an `await` inside a SQLite transaction would let another operation on the
 * same connection slip into it.
 */
export type TransactionSteps<T> = Generator<SqlStatement, T, SqlResult>

/** What a driver wrapper provides to the shared store. */
export interface SqlDriver {
  /** Runs one statement on its own (autocommit). */
  execute(statement: SqlStatement): Promise<SqlResult>
  /** Runs `steps` in one transaction on one connection: commits when they return, rolls back when they throw. */
  transaction<T>(steps: TransactionSteps<T>): Promise<T>
  /**
   * Runs `body` on one connection in autocommit, each statement sent as plain text without
   * parameters: what `migrate()` needs, because MySQL keeps `SET @variable` and `PREPARE` per session
   * and refuses `PREPARE` / `EXECUTE` through the prepared-statement protocol.
   */
  session<T>(body: (execute: (sql: string) => Promise<SqlResult>) => Promise<T>): Promise<T>
}

/** One statement of `migrate()`. */
export interface MigrationStatement {
  readonly sql: string
  /**
   * The statement adds a column and the database has no `ADD COLUMN IF NOT EXISTS` (SQLite): the
   * error {@link SqlDialect.isDuplicateColumn} recognises means the column is already there.
   */
  readonly addsColumn?: boolean
}

/** The kind of a usage row: a rate counter's state or a credit balance (they may share an ID). */
export type UsageKind = 'rate' | 'credits'

/** The primary key of a usage row. */
export interface UsageKey {
  readonly kind: UsageKind
  readonly id: string
}

/** A usage row to write: a counter (`at` its instant, `expiresAt` set) or a balance (`at` its refill, `expiresAt` null). */
export interface UsageRow extends UsageKey {
  readonly value: number
  readonly at: number | null
  readonly expiresAt: number | null
}

/** What a guarded consumption checks the stored key against (see `GuardedUsageRequest`). */
export interface UsageGuard {
  readonly keyId: string
  readonly version: number
  readonly hash: string
}

/** The statements of the usage table (`<table>_usage`), built for the rows at hand. */
export interface UsageStatements {
  /**
   * A locking read of an absent row locks the gap where it would go (InnoDB at REPEATABLE READ), and
   * transactions that all hold that gap and then insert into it deadlock. Rows found absent are then
   * inserted by a second transaction that only lock-reads the rows that exist.
   */
  readonly absentRowsLockGaps: boolean
  /** `kind, id, value, at` of the rows with these keys; `lock` locks them for the transaction (`FOR UPDATE`), in key order. */
  read(keys: readonly UsageKey[], lock: boolean): SqlStatement
  /** Inserts rows that did not exist: a concurrent insert of one of them fails with a unique violation. */
  insert(rows: readonly UsageRow[]): SqlStatement
  /** Overwrites rows that exist and that this transaction has locked. */
  update(rows: readonly UsageRow[]): readonly SqlStatement[]
  /**
   * A committed consumption as one statement, where the database runs it whole on its side (a stored
   * function: PostgreSQL): with `guard`, the guarded consumption of `consumeIfCurrent`, else
   * `consumeUsage`'s. Answers one row in the shape `readConsumed` (shared/usage.ts) reads. A lost
   * race to insert a row fails the statement with a unique violation, and it is run again. Without
   * it, SqlStore runs the consumption as a transaction of several statements.
   */
  consume?(request: UsageRequest, guard: UsageGuard | null): SqlStatement
  /** Deletes the counter states with `expires_at <= ?`; balances (`expires_at IS NULL`) stay. */
  purge(now: number): SqlStatement
}

/** The statements one owner's quota insert runs to keep other quota inserts for this owner out. */
export interface OwnerLock {
  /** Run before the transaction, each in autocommit. */
  readonly before: readonly SqlStatement[]
  /** Run first inside the transaction. */
  readonly inside: readonly SqlStatement[]
}

/** Every piece of SQL one database needs, built for one table. */
export interface SqlDialect {
  /** The statements `migrate()` runs, in order; the database's shipped `migration.sql` holds the same. */
  readonly migration: readonly MigrationStatement[]
  /** `INSERT` of all `COLUMNS` (shared/columns.ts), in that order. */
  readonly insert: string
  /** `SELECT` of all columns, without a `WHERE` clause; the list statement appends its own. */
  readonly select: string
  /** The row with `id = ?`. */
  readonly selectById: string
  /**
   * `selectById` for a guarded consumption's transaction: locks the row against updates and deletes
   * until the transaction ends (a row lock; SQLite's write transaction already excludes every writer).
   */
  readonly selectByIdLocked: string
  /** Whether a row with `id = ?` exists (any column). */
  readonly existsById: string
  /**
   * `n`: the number of rows with `owner_id = ?1`, `tenant_id` null-safe equal to `?2` (a `NULL`
   * parameter counts the rows without a tenant) and `revoked_at IS NULL`; parameters (owner, tenant).
   */
  readonly countActiveByOwnerInTenant: string
  /** Sets `MUTABLE_COLUMNS` in order, then `version = ?`, `WHERE id = ? AND version = ?`. */
  readonly update: string
  readonly deleteById: string
  /** `SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)`, parameters (at, id, at). */
  readonly touch: string
  /** The placeholder of the `index`-th parameter (1-based): `$1` or `?`. */
  placeholder(index: number): string
  /** How a boolean is bound. */
  boolean(value: boolean): SqlValue
  /** How the LIMIT count is bound. */
  limit(value: number): SqlValue
  /**
   * How the quota insert serialises inserts for one owner, across all of the owner's tenants. Once the
   * statements returned, no other quota insert for this owner can be between its count and its insert.
   */
  lockOwner(ownerId: string): OwnerLock
  /** Rate counters and credit balances. */
  readonly usage: UsageStatements
  /** The audit trail's statements (see audit.ts). */
  readonly audit: AuditStatements
  /** The error says the primary key already exists. */
  isUniqueViolation(error: unknown): boolean
  /** The error says an `ADD COLUMN` named a column the table already has. */
  isDuplicateColumn(error: unknown): boolean
  /** The error is a deadlock or serialization failure: running the operation again is safe and may succeed. */
  isRetryable(error: unknown): boolean
}
