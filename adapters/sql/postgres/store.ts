/**
 * PostgresStore: the SQL store on a `pg` pool or client, recognised by its shape (no driver import
 * unless `connect()` is called), and the driver seam that runs statements and transactions on it.
 * With a `readPool`, verify reads go to a streaming replica while the lag guard (replica-guard.ts)
 * finds it fresh enough.
 */
import { ConfigError, type ValidationIssue } from '../../../src/errors.js'
import type { AuditRecord } from '../../../src/audit/audit-store.js'
import { parseTimerDuration, TIMER_DURATION_MESSAGE, type Duration } from '../../../src/policy/duration.js'
import type { InsertResult, QuotaCheck, StoredKey, UpdateResult } from '../../../src/store.js'
import { asStoreError } from '../../../src/store-failure.js'
import { importDriver } from '../../driver.js'
import { invalidClient, resolveTable } from '../shared/options.js'
import { rowToRecord } from '../shared/row-mapping.js'
import type { SqlDriver, SqlResult, SqlStatement } from '../shared/seams.js'
import { SqlStore } from '../shared/sql-store.js'
import { serialized, transact } from '../shared/transactions.js'
import { postgresDialect } from './dialect.js'
import { ReplicaGuard } from './replica-guard.js'

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
   * runs one store operation at a time. The store never ends it. It must reach the primary: every
   * write, every management read, list, audit and usage statement runs on it, and verify reads fall
   * back to it.
   */
  readonly pool: PgPool | PgQueryable
  /** Table name, 1-48 letters, digits or underscores; default `keywarden_keys`. */
  readonly table?: string
  /**
   * A second `pg.Pool`, on a streaming replica (hot standby) of the primary `pool`'s database: verify
   * reads one key there (`getForVerify`) while the replica is at most `maxReplicaLag` behind. Nothing
   * else uses it. Give it `connectionTimeoutMillis` and `query_timeout`: a read that fails falls back
   * to the primary, a read that hangs waits for them. One server, not a load balancer over several
   * replicas: the lag is measured on one connection and must hold for all of them. The store never
   * ends it.
   *
   * @example
   * ```ts
   * import pg from 'pg'
   * import { PostgresStore } from 'keywarden/adapters/sql'
   *
   * const timeouts = { connectionTimeoutMillis: 5_000, query_timeout: 5_000 }
   * const store = new PostgresStore({
   *   pool: new pg.Pool({ connectionString: process.env.DATABASE_URL, ...timeouts }),
   *   readPool: new pg.Pool({ connectionString: process.env.DATABASE_REPLICA_URL, ...timeouts }),
   * })
   * ```
   */
  readonly readPool?: PgPool
  /**
   * How stale a verify read on the replica may be: the replica answers only while it has replayed
   * everything the primary had acknowledged this long before the read began; otherwise the primary
   * answers. Milliseconds or a string such as `'1s'`; default `'1s'`. Must be longer than
   * `replicaCheckInterval`. A revoke elsewhere reaches verify within cache `ttl` + this (see
   * docs/stores/postgres.md).
   *
   * @example
   * ```ts
   * import pg from 'pg'
   * import { PostgresStore } from 'keywarden/adapters/sql'
   *
   * declare const replica: pg.Pool
   * const store = new PostgresStore({ pool, readPool: replica, maxReplicaLag: '500ms' })
   * ```
   */
  readonly maxReplicaLag?: Duration
  /**
   * How often the store compares the primary's WAL position with the replica's, while it has a
   * `readPool`: milliseconds or a string such as `'250ms'`; default `'250ms'`, or a quarter of
   * `maxReplicaLag` when that is shorter than 1 s. Must be shorter than `maxReplicaLag`. The checks start at the
   * first verify read and stop at `close()`; their timer never keeps the process alive. Each check is
   * two small queries, one on each pool.
   *
   * @example
   * ```ts
   * import pg from 'pg'
   * import { PostgresStore } from 'keywarden/adapters/sql'
   *
   * declare const replica: pg.Pool
   * const store = new PostgresStore({ pool, readPool: replica, maxReplicaLag: '2s', replicaCheckInterval: '500ms' })
   * ```
   */
  readonly replicaCheckInterval?: Duration
  /**
   * Hears when the replica cannot be used: a lag check or a read on it failed (a `StoreError`, the
   * driver's error as `cause`), or the `readPool` is no standby. Verify reads go to the primary
   * meanwhile, so nothing fails; it is told once per run of failures. Default: `console.warn`.
   *
   * @example
   * ```ts
   * import pg from 'pg'
   * import { PostgresStore } from 'keywarden/adapters/sql'
   *
   * declare const replica: pg.Pool
   * const store = new PostgresStore({
   *   pool,
   *   readPool: replica,
   *   onReplicaError: (error) => console.warn('verify reads use the primary for now', error),
   * })
   * ```
   */
  readonly onReplicaError?: (error: unknown) => void
}

/** The replica settings {@link PostgresStore} uses unless given others, in milliseconds. */
const REPLICA_DEFAULTS = { maxLagMs: 1_000, checkIntervalMs: 250 } as const

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
  readonly #replica: { readonly pool: PgQueryable; readonly guard: ReplicaGuard; readonly selectById: string } | undefined

  /**
   * Keeps the clients and table; no I/O. Throws `ConfigError` for an invalid table name, client, or
   * replica option, naming it.
   */
  constructor(options: PostgresStoreOptions | PgPool | PgQueryable) {
    // The pool alone (`new PostgresStore(pool)`) means the default table.
    const given: PostgresStoreOptions = typeof (options as PgQueryable)?.query === 'function' ? { pool: options as PgQueryable } : ((options ?? {}) as PostgresStoreOptions)
    const table = resolveTable(given.table)
    const dialect = postgresDialect(table)
    const driver = postgresDriver(given.pool)
    const replica = replicaSettings(given)
    super(table, dialect, driver)
    this.#replica = replica && {
      pool: replica.readPool,
      guard: new ReplicaGuard(driver, replica.readPool, replica),
      selectById: dialect.selectById,
    }
  }

  /**
   * The read verify makes ({@link keywarden!KeyStore.getForVerify | KeyStore.getForVerify}). Without a
   * `readPool`, the same as {@link SqlStore.get}. With one: one `SELECT` on the replica while the lag
   * guard finds it at most `maxReplicaLag` behind the primary and this key unwritten by this store
   * since the replica last caught up; otherwise, or when the replica read fails, `get` on the primary.
   * `changed: true` reads the primary, and keeps reading it for this key until the replica has caught
   * up with the moment of the call.
   *
   * @example
   * ```ts
   * import pg from 'pg'
   * import { PostgresStore } from 'keywarden/adapters/sql'
   *
   * declare const replica: pg.Pool
   * const store = new PostgresStore({ pool, readPool: replica })
   * const record = await store.getForVerify(keyId) // what the KeyManager's verify calls
   * ```
   */
  async getForVerify(id: string, options?: { readonly changed?: boolean }): Promise<StoredKey | null> {
    const replica = this.#replica
    if (replica === undefined) return this.get(id)
    if (options?.changed === true) {
      replica.guard.noteChange(id)
      return this.get(id)
    }
    if (!replica.guard.useReplica(id)) return this.get(id)
    let rows: Record<string, unknown>[]
    try {
      rows = (await replica.pool.query(replica.selectById, [id])).rows ?? []
    } catch (error) {
      replica.guard.replicaFailed(asStoreError('getForVerify', error))
      return this.get(id)
    }
    return rows[0] === undefined ? null : rowToRecord(rows[0])
  }

  /** {@link SqlStore.insert}; with a `readPool`, verify reads of this key use the primary until the replica has it. */
  override async insert(record: StoredKey, quota: QuotaCheck | null, audit?: AuditRecord): Promise<InsertResult> {
    try {
      return await super.insert(record, quota, audit)
    } finally {
      this.#replica?.guard.noteWrite(record.id)
    }
  }

  /** {@link SqlStore.update}; with a `readPool`, verify reads of this key use the primary until the replica has it. */
  override async update(record: StoredKey, expectedVersion: number, audit?: AuditRecord): Promise<UpdateResult> {
    try {
      return await super.update(record, expectedVersion, audit)
    } finally {
      this.#replica?.guard.noteWrite(record.id)
    }
  }

  /** {@link SqlStore.delete}; with a `readPool`, verify reads of this key use the primary until the replica has it. */
  override async delete(id: string, audit?: AuditRecord): Promise<boolean> {
    try {
      return await super.delete(id, audit)
    } finally {
      this.#replica?.guard.noteWrite(id)
    }
  }

  /** {@link SqlStore.migrate}; with a `readPool`, every verify read uses the primary until the replica has the schema. */
  override async migrate(): Promise<void> {
    try {
      await super.migrate()
    } finally {
      this.#replica?.guard.noteWriteOfAll()
    }
  }

  /** Stops the replica lag checks (verify reads then use the primary), then as {@link SqlStore.close}. */
  override async close(): Promise<void> {
    this.#replica?.guard.close()
    await super.close()
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

interface ReplicaSettings {
  readonly readPool: PgPool
  readonly maxLagMs: number
  readonly checkIntervalMs: number
  readonly onError: (error: unknown) => void
}

function defaultOnReplicaError(error: unknown): void {
  console.warn('keywarden: the PostgreSQL read replica cannot be used; verify reads go to the primary until it can', error)
}

/** The replica options checked (each problem named), or `undefined` without a `readPool`. */
function replicaSettings(options: PostgresStoreOptions): ReplicaSettings | undefined {
  const { readPool, maxReplicaLag, replicaCheckInterval, onReplicaError } = options
  const issues: ValidationIssue[] = []
  const pool = readPool as Partial<PgPool> | null | undefined
  if (readPool !== undefined && (typeof pool?.query !== 'function' || typeof pool.connect !== 'function' || typeof pool.totalCount !== 'number')) {
    issues.push({ path: ['readPool'], message: 'must be a pg Pool on a streaming replica (new pg.Pool(...))' })
  } else if (readPool !== undefined && (readPool as unknown) === options.pool) {
    issues.push({ path: ['readPool'], message: 'must be a pool on the replica, not the primary pool itself' })
  }
  const maxLagMs = maxReplicaLag === undefined ? REPLICA_DEFAULTS.maxLagMs : parseTimerDuration(maxReplicaLag)
  if (maxLagMs === undefined) issues.push({ path: ['maxReplicaLag'], message: TIMER_DURATION_MESSAGE })
  const checkIntervalMs =
    replicaCheckInterval !== undefined
      ? parseTimerDuration(replicaCheckInterval)
      : Math.max(1, Math.min(REPLICA_DEFAULTS.checkIntervalMs, Math.floor((maxLagMs ?? REPLICA_DEFAULTS.maxLagMs) / 4)))
  if (checkIntervalMs === undefined) issues.push({ path: ['replicaCheckInterval'], message: TIMER_DURATION_MESSAGE })
  else if (maxLagMs !== undefined && checkIntervalMs >= maxLagMs) {
    issues.push({ path: ['replicaCheckInterval'], message: 'must be shorter than maxReplicaLag (the replica is used only while its last check is younger than that)' })
  }
  if (onReplicaError !== undefined && typeof onReplicaError !== 'function') issues.push({ path: ['onReplicaError'], message: 'must be a function' })
  if (readPool === undefined) {
    for (const option of ['maxReplicaLag', 'replicaCheckInterval', 'onReplicaError'] as const) {
      if (options[option] !== undefined) issues.push({ path: [option], message: 'needs a readPool' })
    }
  }
  if (issues.length > 0) throw new ConfigError(issues)
  if (readPool === undefined) return undefined
  return { readPool, maxLagMs: maxLagMs!, checkIntervalMs: checkIntervalMs!, onError: onReplicaError ?? defaultOnReplicaError }
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
