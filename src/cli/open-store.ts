/**
 * Opens the store a `--store` URL names, with the driver the project installed (ioredis, pg, mysql2,
 * better-sqlite3: optional peers, imported only here and only for the store asked for).
 */
import { existsSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { importDriver } from '../../adapters/driver.js'
import type { IoredisLikeClient } from '../../adapters/redis/client.js'
import { RedisStore } from '../../adapters/redis/redis-store.js'
import { MySqlStore } from '../../adapters/sql/mysql/store.js'
import { PostgresStore } from '../../adapters/sql/postgres/store.js'
import { resolveTable } from '../../adapters/sql/shared/options.js'
import { SqliteStore } from '../../adapters/sql/sqlite/store.js'
import { ConfigError } from '../errors.js'
import type { KeyStore } from '../store.js'
import { CliError, EXIT, UsageError } from './exit-codes.js'
import { describeCause, quoteInput } from './output.js'
import type { StoreTarget } from './store-url.js'

/** An open store and what the bin needs around it. */
export interface OpenedStore {
  /** The store, for a KeyManager. */
  readonly store: KeyStore
  /** For messages: `PostgreSQL table keywarden_keys`, `Redis namespace keywarden`, ... (never the URL). */
  readonly label: string
  /** Creates the schema (SQL) or converts an old namespace (Redis). */
  readonly migrate: () => Promise<void>
  /** Ends the connection the bin opened. */
  readonly close: () => Promise<void>
}

/** Where in the store the keys are: the SQL table or the Redis namespace. */
export interface StoreLocation {
  readonly table?: string | undefined
  readonly namespace?: string | undefined
}

const REDIS_TIMEOUT_MS = 5_000

interface IoredisModule {
  Redis: new (url: string, options: object) => IoredisLikeClient & {
    connect(): Promise<void>
    quit(): Promise<unknown>
    disconnect(): void
    on(event: 'error', listener: (error: unknown) => void): unknown
  }
}

/** Turns what store constructors throw for bad settings into errors that name the bin's options. */
function settingError(error: unknown): never {
  if (error instanceof ConfigError) {
    const issue = error.issues[0]
    const field = issue?.path[0]
    // A missing driver is the machine's state, not the command line's.
    if (field === 'driver') throw new CliError(EXIT.store, issue!.message)
    if (field === 'table' || field === 'namespace') throw new UsageError(`--${field}: ${issue!.message}`)
  }
  throw error
}

async function openRedis(url: string, namespace: string | undefined): Promise<OpenedStore> {
  const ioredis = (await importDriver('ioredis', 'ioredis', 'A redis:// store').catch(settingError)) as IoredisModule
  // One attempt and no retries: a command line should fail at once, not reconnect in the background.
  const client = new ioredis.Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: REDIS_TIMEOUT_MS,
    commandTimeout: REDIS_TIMEOUT_MS,
    retryStrategy: () => null,
  })
  let failure: unknown
  client.on('error', (error) => (failure = error))
  let store: RedisStore
  try {
    store = new RedisStore({ client, ...(namespace === undefined ? {} : { namespace }) })
  } catch (error) {
    client.disconnect()
    settingError(error)
  }
  try {
    await client.connect()
  } catch (error) {
    client.disconnect()
    throw new CliError(EXIT.store, `cannot connect to Redis (${describeCause(failure ?? error)})`)
  }
  return {
    store,
    label: `Redis namespace ${store.namespace}`,
    migrate: () => store.migrate(),
    close: async () => {
      await client.quit().catch(() => client.disconnect())
    },
  }
}

async function openSqlite(file: string, table: string | undefined, create: boolean, cwd: string): Promise<OpenedStore> {
  const path = isAbsolute(file) ? file : join(cwd, file)
  // better-sqlite3 creates a missing file; only migrate should, or a typo makes an empty store.
  if (!create && !existsSync(path)) throw new CliError(EXIT.store, `the SQLite file ${quoteInput(file)} does not exist (create it with keywarden migrate)`)
  let store: SqliteStore
  try {
    store = await SqliteStore.open(path, table === undefined ? {} : { table })
  } catch (error) {
    if (error instanceof ConfigError) settingError(error)
    throw new CliError(EXIT.store, `cannot open the SQLite file ${quoteInput(file)} (${describeCause(error)})`)
  }
  return { store, label: `SQLite table ${store.table}`, migrate: () => store.migrate(), close: () => store.close() }
}

/**
 * Opens the store. `create` lets a SQLite file come into being (for `migrate`); every other command
 * refuses a file that does not exist.
 *
 * @throws {@link UsageError} for a bad table or namespace or one given to the wrong kind of store;
 *   {@link CliError} with {@link EXIT}.store when the driver is missing or the store cannot be reached.
 */
export async function openStore(target: StoreTarget, location: StoreLocation, options: { create: boolean; cwd: string }): Promise<OpenedStore> {
  const { table, namespace } = location
  if (target.kind === 'redis') {
    if (table !== undefined) throw new UsageError('--table is for SQL stores; a Redis store takes --namespace')
    return openRedis(target.url, namespace)
  }
  if (namespace !== undefined) throw new UsageError('--namespace is for Redis; a SQL store takes --table')
  // A bad table name is the command line's mistake: say so before looking for the store.
  try {
    resolveTable(table)
  } catch (error) {
    settingError(error)
  }
  if (target.kind === 'sqlite') return openSqlite(target.file, table, options.create, options.cwd)
  const settings = table === undefined ? {} : { table }
  try {
    if (target.kind === 'postgres') {
      const store = await PostgresStore.connect(target.url, settings)
      return { store, label: `PostgreSQL table ${store.table}`, migrate: () => store.migrate(), close: () => store.close() }
    }
    const store = await MySqlStore.connect(target.url, settings)
    return { store, label: `MySQL table ${store.table}`, migrate: () => store.migrate(), close: () => store.close() }
  } catch (error) {
    return settingError(error)
  }
}
