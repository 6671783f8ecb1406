/**
 * The part of the SQL stores that is the same for every database: row <-> record mapping, the list
 * query, the insert-under-quota flow, compare-and-set updates and error wrapping. Each dialect file
 * (`dialects/*.ts`) holds that database's SQL; each driver wrapper (`*-store.ts`) adapts one client.
 */
import { ConfigError } from '../../src/errors.js'
import { callStore } from '../../src/store-failure.js'
import type { InsertResult, KeyQuery, KeyStatus, KeyStore, QuotaCheck, StoredKey, UpdateResult } from '../../src/store.js'

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

/** What a driver wrapper provides to {@link SqlStore}. */
export interface SqlDriver {
  /** Runs one statement on its own (autocommit). */
  execute(statement: SqlStatement): Promise<SqlResult>
  /** Runs `steps` in one transaction on one connection: commits when they return, rolls back when they throw. */
  transaction<T>(steps: TransactionSteps<T>): Promise<T>
}

/** Every piece of SQL one database needs, built for one table. */
export interface SqlDialect {
  /** The statements {@link SqlStore.migrate} runs, in order; the shipped `.sql` file holds the same. */
  readonly migration: readonly string[]
  /** `INSERT` of all {@link COLUMNS}, in that order. */
  readonly insert: string
  /** `SELECT` of all columns, without a `WHERE` clause; {@link SqlStore.list} appends its own. */
  readonly select: string
  /** The row with `id = ?`. */
  readonly selectById: string
  /** Whether a row with `id = ?` exists (any column). */
  readonly existsById: string
  /** `n`: the number of rows with `owner_id = ?` and `revoked_at IS NULL`. */
  readonly countActiveByOwner: string
  /** Sets {@link MUTABLE_COLUMNS} in order, then `version = ?`, `WHERE id = ? AND version = ?`. */
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
   * How the quota insert serialises inserts for one owner: statements run before the transaction (in
   * autocommit) and statements run first inside it. Once they return, no other quota insert for this
   * owner can be between its count and its insert.
   */
  lockOwner(ownerId: string): { readonly before: readonly SqlStatement[]; readonly inside: readonly SqlStatement[] }
  /** The error says the primary key already exists. */
  isUniqueViolation(error: unknown): boolean
  /** The error is a deadlock or serialization failure: running the operation again is safe and may succeed. */
  isRetryable(error: unknown): boolean
}

/** The table's columns, in the order of {@link SqlDialect.insert}. */
export const COLUMNS = [
  'id',
  'name',
  'description',
  'owner_id',
  'tenant_id',
  'environment',
  'key_type',
  'scopes_json',
  'roles_json',
  'groups_json',
  'metadata_json',
  'start',
  'hash',
  'previous_hash',
  'previous_hash_expires_at',
  'created_at',
  'updated_at',
  'expires_at',
  'last_used_at',
  'enabled',
  'revoked_at',
  'expiry_notice_for',
  'version',
] as const

/**
 * The columns an update writes, in the order of {@link SqlDialect.update}. Left out on purpose: the
 * immutable `owner_id`, `tenant_id`, `environment` and `created_at`, and `last_used_at`, which only
 * `touch` writes (so a management update never undoes a concurrent touch).
 */
export const MUTABLE_COLUMNS = [
  'name',
  'description',
  'key_type',
  'scopes_json',
  'roles_json',
  'groups_json',
  'metadata_json',
  'start',
  'hash',
  'previous_hash',
  'previous_hash_expires_at',
  'updated_at',
  'expires_at',
  'enabled',
  'revoked_at',
  'expiry_notice_for',
] as const

/**
 * The table used when none is configured: `keywarden_keys` (MySQL also uses `keywarden_keys_locks`).
 *
 * @example
 * ```ts
 * import { DEFAULT_TABLE } from 'keywarden/adapters/sql'
 *
 * await pool.query(`SELECT count(*) FROM ${DEFAULT_TABLE}`)
 * ```
 */
export const DEFAULT_TABLE = 'keywarden_keys'

// Leaves room for the longest derived name (`<table>_expires_idx`, `<table>_locks`) within the 63-byte
// (PostgreSQL) and 64-character (MySQL) identifier limits.
const TABLE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/

/** Checks a configured table name; only identifier characters, so it can be quoted safely in every dialect. */
export function resolveTable(table: unknown): string {
  if (table === undefined) return DEFAULT_TABLE
  if (typeof table !== 'string' || !TABLE_PATTERN.test(table)) {
    throw new ConfigError([
      { path: ['table'], message: 'must be 1-48 letters, digits or underscores, not starting with a digit' },
    ])
  }
  return table
}

/** Throws the ConfigError for a client object that is not what a store expects. */
export function invalidClient(option: string, message: string): never {
  throw new ConfigError([{ path: [option], message }])
}

/** Runs `steps` awaiting each statement. */
export async function runSteps<T>(steps: TransactionSteps<T>, execute: (statement: SqlStatement) => Promise<SqlResult>): Promise<T> {
  let step = steps.next()
  while (!step.done) step = steps.next(await execute(step.value))
  return step.value
}

/** Runs `steps` synchronously. */
export function runStepsSync<T>(steps: TransactionSteps<T>, execute: (statement: SqlStatement) => SqlResult): T {
  let step = steps.next()
  while (!step.done) step = steps.next(execute(step.value))
  return step.value
}

/** One connection, as {@link transact} drives it. */
export interface TransactionConnection {
  begin(): Promise<unknown>
  commit(): Promise<unknown>
  rollback(): Promise<unknown>
  execute(statement: SqlStatement): Promise<SqlResult>
}

/**
 * Runs `steps` between BEGIN and COMMIT on one connection; on error rolls back and rethrows the
 * original error. Calls `onBroken` when even the rollback failed: the connection's state is then
 * unknown, and a pooled one must be discarded rather than handed to the next caller.
 */
export async function transact<T>(connection: TransactionConnection, steps: TransactionSteps<T>, onBroken: () => void = () => {}): Promise<T> {
  try {
    await connection.begin()
    const result = await runSteps(steps, (statement) => connection.execute(statement))
    await connection.commit()
    return result
  } catch (error) {
    await connection.rollback().catch(onBroken)
    throw error
  }
}

/** A property of a driver error (`code`, `errno`), or `undefined`. */
export function errorProperty(error: unknown, name: string): unknown {
  return typeof error === 'object' && error !== null ? (error as Record<string, unknown>)[name] : undefined
}

/**
 * Runs tasks one at a time, in call order. Used when the client passed in is a single connection:
 * a transaction must not share it with other statements.
 */
export function serialized(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve()
  return (task) => {
    const result = tail.then(task)
    tail = result.catch(() => undefined)
    return result
  }
}

const MAX_ATTEMPTS = 5

const decoder = new TextDecoder('utf-8', { fatal: true })

// Drivers return text as strings, binary columns (MySQL VARBINARY) as Buffers, integers as numbers,
// bigints or strings (pg's BIGINT), booleans as booleans or 0/1. These read every form.
function readText(value: unknown): string {
  if (typeof value === 'string') return value
  if (value instanceof Uint8Array) return decoder.decode(value)
  throw new TypeError(`Expected a text column, got ${typeof value}`)
}

function readNullableText(value: unknown): string | null {
  return value === null || value === undefined ? null : readText(value)
}

function readInteger(value: unknown): number {
  const number = typeof value === 'number' ? value : typeof value === 'bigint' || typeof value === 'string' ? Number(value) : NaN
  if (!Number.isSafeInteger(number)) throw new TypeError('Expected an integer column')
  return number
}

function readNullableInteger(value: unknown): number | null {
  return value === null || value === undefined ? null : readInteger(value)
}

function readBoolean(value: unknown): boolean {
  return value === true || (value !== false && readInteger(value) === 1)
}

function readJson<T>(value: unknown): T {
  return JSON.parse(readText(value)) as T
}

/** The JSON text columns, in table order (scopes, roles, groups, metadata), shared by insert and update. */
function jsonColumns(record: StoredKey): [string, string, string, string] {
  return [JSON.stringify(record.scopes), JSON.stringify(record.roles), JSON.stringify(record.groups), JSON.stringify(record.metadata)]
}

/** The record a row holds. */
export function rowToRecord(row: SqlRow): StoredKey {
  return {
    id: readText(row['id']),
    name: readText(row['name']),
    description: readNullableText(row['description']),
    ownerId: readNullableText(row['owner_id']),
    tenantId: readNullableText(row['tenant_id']),
    environment: readText(row['environment']),
    type: readNullableText(row['key_type']),
    scopes: readJson(row['scopes_json']),
    roles: readJson(row['roles_json']),
    groups: readJson(row['groups_json']),
    metadata: readJson(row['metadata_json']),
    start: readText(row['start']),
    hash: readText(row['hash']),
    previousHash: readNullableText(row['previous_hash']),
    previousHashExpiresAt: readNullableInteger(row['previous_hash_expires_at']),
    createdAt: readInteger(row['created_at']),
    updatedAt: readInteger(row['updated_at']),
    expiresAt: readNullableInteger(row['expires_at']),
    lastUsedAt: readNullableInteger(row['last_used_at']),
    enabled: readBoolean(row['enabled']),
    revokedAt: readNullableInteger(row['revoked_at']),
    expiryNoticeFor: readNullableInteger(row['expiry_notice_for']),
    version: readInteger(row['version']),
  }
}

/**
 * The shared implementation behind `PostgresStore`, `MySqlStore` and `SqliteStore`; use one of those.
 * Every method runs a fixed, parameterised statement (or, for `list`, one built from the query); a
 * driver error is rethrown as a {@link StoreError} naming only the operation, with the driver's error
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
   * one process at a time (e.g. at deploy), or apply the shipped `adapters/sql/migrations/*.sql`
   * with your own migration tool instead.
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
   * non-revoked keys and inserts, in one transaction. A primary-key violation returns `id_taken`.
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
        const { affected } = await this.#driver.execute({ sql: this.#dialect.update, params: this.#updateParams(record, expectedVersion) })
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
      const { rows } = await this.#driver.execute(this.#listStatement(query))
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
    const counted = yield { sql: this.#dialect.countActiveByOwner, params: [quota.ownerId] }
    if (readInteger(counted.rows[0]?.['n'] ?? 0) >= quota.limit) return 'quota_exceeded'
    yield this.#insertStatement(record)
    return 'inserted'
  }

  #insertStatement(record: StoredKey): SqlStatement {
    const bool = this.#dialect.boolean
    return {
      sql: this.#dialect.insert,
      params: [
        record.id,
        record.name,
        record.description,
        record.ownerId,
        record.tenantId,
        record.environment,
        record.type,
        ...jsonColumns(record),
        record.start,
        record.hash,
        record.previousHash,
        record.previousHashExpiresAt,
        record.createdAt,
        record.updatedAt,
        record.expiresAt,
        record.lastUsedAt,
        bool(record.enabled),
        record.revokedAt,
        record.expiryNoticeFor,
        record.version,
      ],
    }
  }

  #updateParams(record: StoredKey, expectedVersion: number): SqlValue[] {
    return [
      record.name,
      record.description,
      record.type,
      ...jsonColumns(record),
      record.start,
      record.hash,
      record.previousHash,
      record.previousHashExpiresAt,
      record.updatedAt,
      record.expiresAt,
      this.#dialect.boolean(record.enabled),
      record.revokedAt,
      record.expiryNoticeFor,
      record.version,
      record.id,
      expectedVersion,
    ]
  }

  /** One SELECT for the whole query: every filter AND-ed, ordered by (created_at, id), keyset `after`. */
  #listStatement(query: KeyQuery): SqlStatement {
    if (!Number.isSafeInteger(query.limit) || query.limit < 1) throw new RangeError('query.limit must be a positive integer')
    const params: SqlValue[] = []
    const bind = (value: SqlValue): string => {
      params.push(value)
      return this.#dialect.placeholder(params.length)
    }
    const where: string[] = []
    if (query.ownerId !== undefined) where.push(`owner_id = ${bind(query.ownerId)}`)
    if (query.tenantId !== undefined) where.push(`tenant_id = ${bind(query.tenantId)}`)
    if (query.environment !== undefined) where.push(`environment = ${bind(query.environment)}`)
    if (query.type !== undefined) where.push(`key_type = ${bind(query.type)}`)
    if (query.status !== undefined) where.push(statusCondition(query.status, () => bind(query.now)))
    if (query.expiresWithin !== undefined) {
      const { from, to } = query.expiresWithin
      where.push(`revoked_at IS NULL AND expires_at > ${bind(from)} AND expires_at <= ${bind(to)}`)
    }
    const direction = query.order === 'desc' ? 'DESC' : 'ASC'
    if (query.after !== undefined) {
      // (created_at, id) > (?, ?), expanded: the leading `created_at >=` lets every planner use the
      // (created_at, id) index for a range scan, which not all of them do for row-value comparisons.
      const op = direction === 'ASC' ? '>' : '<'
      const { createdAt, id } = query.after
      where.push(`created_at ${op}= ${bind(createdAt)} AND (created_at ${op} ${bind(createdAt)} OR id ${op} ${bind(id)})`)
    }
    // The limit is bound too, so each filter combination is one statement text: drivers and servers
    // cache prepared statements by text (MySQL caps them server-wide).
    const sql =
      this.#dialect.select +
      (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
      ` ORDER BY created_at ${direction}, id ${direction} LIMIT ${bind(this.#dialect.limit(query.limit))}`
    return { sql, params }
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

/** The SQL form of `keyStatus` (src/store.ts): revoked, then expired (`expires_at <= now`), then disabled, then active. */
function statusCondition(status: KeyStatus, now: () => string): string {
  switch (status) {
    case 'revoked':
      return 'revoked_at IS NOT NULL'
    case 'expired':
      return `revoked_at IS NULL AND expires_at <= ${now()}`
    case 'disabled':
      return `revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ${now()}) AND enabled = FALSE`
    case 'active':
      return `revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ${now()}) AND enabled = TRUE`
  }
}
