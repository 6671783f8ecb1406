/**
 * withQueryTimeout: a client-side time limit on every statement of a `mysql2/promise` pool, which
 * mysql2 itself lacks; a connection whose statement ran out of time is destroyed, never reused.
 */
import { timerDurationOption, type Duration } from '../../../src/policy/duration.js'
import { invalidClient } from '../shared/options.js'
import type { MySqlConnection, MySqlPool } from './store.js'

/** A connection checked out of a `mysql2/promise` pool, as far as the wrapper uses it. */
type PooledConnection = MySqlConnection & { release(): void; destroy(): void }

/**
 * Wraps a `mysql2/promise` pool so that every statement has a client-side time limit, for a
 * {@link MySqlStore} over a pool you own ({@link MySqlStore.connect} applies it for you). mysql2 has no
 * pool-wide query timeout, and its per-query `timeout` option neither covers the `PREPARE` that
 * `execute()` sends first nor frees the connection, so on a stalled network a call would wait until
 * TCP gives up.
 *
 * Each statement (`execute`; `query`, which only `migrate()` uses; and `START TRANSACTION`, `COMMIT`,
 * `ROLLBACK` in a transaction) must answer within `timeout`, or it rejects with an error whose `code`
 * is `'PROTOCOL_SEQUENCE_TIMEOUT'` (its message holds no SQL and no parameter values); the store
 * reports it as a `StoreError`. A
 * connection whose statement timed out, or whose link broke (a `fatal` error,
 * `PROTOCOL_CONNECTION_LOST`, `ECONNRESET`, `EPIPE`), is destroyed, never handed back to the pool.
 * Waiting for a new connection is bounded by the pool's own `connectTimeout`. The wrapper imports
 * nothing from `mysql2` and does not end the pool: `pool.end()` stays yours.
 *
 * @param pool - A `mysql2/promise` pool (`mysql.createPool(...)`); only its `getConnection()` is used.
 * @param timeout - The limit for each statement: milliseconds (1 to 2147483647) or a string such as `'5s'`.
 * @returns A pool for `new MySqlStore({ pool })`.
 * @throws {@link keywarden!ConfigError | ConfigError} naming `pool` or `timeout` when either is invalid.
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise'
 * import { MySqlStore, withQueryTimeout } from 'keywarden/adapters/sql'
 *
 * const pool = mysql.createPool({ uri: process.env.DATABASE_URL, connectionLimit: 10, connectTimeout: 5_000 })
 * const store = new MySqlStore({ pool: withQueryTimeout(pool, '5s') }) // each statement: 5 s at most
 * // at shutdown: await pool.end()
 * ```
 */
export function withQueryTimeout(pool: Pick<MySqlPool, 'getConnection'>, timeout: Duration): MySqlPool {
  const candidate = pool as Partial<MySqlPool & { promise: unknown }> | undefined
  if (typeof candidate?.promise === 'function') {
    invalidClient('pool', 'must be a mysql2/promise pool; convert a callback-style one with .promise()')
  }
  if (typeof candidate?.getConnection !== 'function') {
    invalidClient('pool', 'must be a mysql2/promise pool (mysql.createPool(...)); a single connection has no getConnection()')
  }
  const ms = timerDurationOption(timeout, 'timeout')
  const source = pool as Pick<MySqlPool, 'getConnection'>

  const guard = (connection: PooledConnection) => {
    let destroyed = false
    const destroy = () => {
      if (destroyed) return
      destroyed = true
      connection.destroy()
    }
    // mysql2 ignores release() of a destroyed connection; other pools need not.
    const release = () => {
      if (!destroyed) connection.release()
    }
    const limit = <T>(statement: () => Promise<T>): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          // The statement may still be on the wire: its connection is in an unknown state.
          destroy()
          reject(Object.assign(new Error(`The statement took longer than ${ms} ms`), { code: 'PROTOCOL_SEQUENCE_TIMEOUT' }))
        }, ms)
        let pending: Promise<T>
        try {
          pending = statement()
        } catch (error) {
          pending = Promise.reject(error)
        }
        pending.then(
          (value) => {
            clearTimeout(timer)
            resolve(value)
          },
          (error: unknown) => {
            clearTimeout(timer)
            if (isConnectionLevel(error)) destroy()
            reject(error)
          },
        )
      })
    return { limit, release, destroy }
  }

  return {
    execute: async (sql, values) => {
      const connection = await source.getConnection()
      const { limit, release } = guard(connection)
      try {
        return await limit(() => connection.execute(sql, values))
      } finally {
        release()
      }
    },
    getConnection: async () => {
      const connection = await source.getConnection()
      const { limit, release, destroy } = guard(connection)
      const query = connection.query
      return {
        execute: (sql, values) => limit(() => connection.execute(sql, values)),
        // Passed on only where the pool's connections have it (migrate() then says what is missing).
        ...(typeof query === 'function' ? { query: (sql: string) => limit(() => query.call(connection, sql)) } : {}),
        beginTransaction: () => limit(() => connection.beginTransaction()),
        commit: () => limit(() => connection.commit()),
        rollback: () => limit(() => connection.rollback()),
        release,
        destroy,
      }
    },
  }
}

/** A lost connection or a protocol error: the connection's state is unknown. */
function isConnectionLevel(error: unknown): boolean {
  const { fatal, code } = (error ?? {}) as { fatal?: unknown; code?: unknown }
  return fatal === true || code === 'PROTOCOL_CONNECTION_LOST' || code === 'ECONNRESET' || code === 'EPIPE'
}
