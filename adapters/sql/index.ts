/**
 * SQL key stores: `import { PostgresStore, MySqlStore, SqliteStore } from 'keywarden/adapters/sql'`.
 * Each wraps a client you create and own (`pg`, `mysql2`, `better-sqlite3`); none of these drivers is
 * imported here. Create the schema with `await store.migrate()`, or apply the shipped
 * `keywarden/adapters/sql/migrations/{postgres,mysql,sqlite}.sql` with your own migration tool.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { KeyManager } from 'keywarden'
 * import { PostgresStore } from 'keywarden/adapters/sql'
 *
 * const store = new PostgresStore({ pool: new pg.Pool(), table: 'api_keys' })
 * await store.migrate()
 * const keys = new KeyManager({ store, pepper: process.env.KEY_PEPPER })
 * ```
 *
 * @example Cache invalidation across instances over LISTEN/NOTIFY
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { PostgresInvalidationChannel } from 'keywarden/adapters/sql'
 *
 * const channel = new PostgresInvalidationChannel({ pool })
 * const keys = new KeyManager({ store, cache: { ttl: '30s', channel } })
 * ```
 *
 * @module keywarden/adapters/sql
 */
export { PostgresStore, type PgPool, type PgQueryable, type PostgresStoreOptions } from './postgres/store.js'
export { MySqlStore, type MySqlConnection, type MySqlPool, type MySqlStoreOptions } from './mysql/store.js'
export { withQueryTimeout } from './mysql/query-timeout.js'
export { SqliteStore, type SqliteDatabase, type SqliteStatement, type SqliteStoreOptions } from './sqlite/store.js'
export { SqlStore } from './shared/sql-store.js'
export { DEFAULT_TABLE } from './shared/options.js'
export {
  PostgresInvalidationChannel,
  DEFAULT_POSTGRES_INVALIDATION_CHANNEL,
  type PostgresInvalidationChannelOptions,
  type PgListenPool,
  type PgListenClient,
  type PgNotification,
} from './postgres/invalidation-channel.js'
