/**
 * The three server-backed stores as the fault suites use them: a client that reaches the real server
 * through a {@link TcpProxy}, with the timeouts docs/stores/README.md recommends, and a second store on the
 * same namespace or table over a direct connection, to read what the server really holds while (and
 * after) the proxy misbehaves. Both stores are real: nothing here mocks storage.
 */
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { vi } from 'vitest'
import { RedisStore } from '../../adapters/redis/index.js'
// The shipped wrapper, from the sources: at run time 'keywarden/adapters/sql' would resolve, through the
// package's own exports, to the last build in dist/ (tsconfig paths only apply to type-checking).
import { MySqlStore, PostgresStore, withQueryTimeout } from '../../adapters/sql/index.js'
import type { KeyStore } from '../../src/index.js'
import { mariadbGate, postgresGate, redisGate } from '../support/gates.js'
import { deleteRedisNamespace, SERVICES, uniqueSuffix, type ServiceGate } from '../support/services.js'
import type { TcpProxy } from '../support/tcp-proxy.js'

/** Client-side time limits of the clients under test, in milliseconds (connect, and each command or query). */
export const CLIENT_TIMEOUT_MS = 500

/** One store whose client goes through the proxy, and a direct view of the same data. */
export interface FaultFixture {
  /** The store under test; its client connects through the proxy. */
  readonly store: KeyStore
  /** The same namespace or table over a direct connection (never through the proxy). */
  readonly direct: KeyStore
  /** Resolves once the client has seen its connections die (after a cut or a reset). */
  readonly disconnected: () => Promise<void>
  /** Resolves once the client can serve again after the proxy was restored. */
  readonly recovered: () => Promise<void>
  /** Closes both clients and drops the namespace or table. */
  readonly close: () => Promise<void>
}

/** A server-backed store the fault suite runs against, reached through a proxy. */
export interface NetworkBackend {
  readonly name: 'redis' | 'postgres' | 'mariadb'
  readonly target: { readonly host: string; readonly port: number }
  /** Text in the request that commits a quota insert or an audited change: the script, or the transaction's COMMIT. */
  readonly commitMarker: string
  readonly gate: () => Promise<ServiceGate>
  readonly open: (proxy: TcpProxy) => Promise<FaultFixture>
}

const redis: NetworkBackend = {
  name: 'redis',
  target: SERVICES.redis,
  commitMarker: 'EVAL',
  gate: redisGate,
  open: async (proxy) => {
    const namespace = `kwf${uniqueSuffix()}`
    const client = new Redis({
      host: '127.0.0.1',
      port: proxy.port,
      lazyConnect: true,
      // Fail at once while disconnected, never replay a command after a reconnect, bound every command.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: CLIENT_TIMEOUT_MS,
      connectTimeout: CLIENT_TIMEOUT_MS,
      // Reconnect soon and keep trying, capped: the default backoff grows to 5 s.
      retryStrategy: (times) => Math.min(times * 20, 200),
    })
    client.on('error', () => undefined)
    await client.connect()
    const admin = new Redis(SERVICES.redis)
    return {
      store: new RedisStore({ client, namespace }),
      direct: new RedisStore({ client: admin, namespace }),
      // Not events.once: it rejects on the 'error' event that comes first.
      disconnected: async () => {
        if (client.status === 'ready') await new Promise((resolve) => client.once('close', resolve))
      },
      recovered: async () => {
        if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
      },
      close: async () => {
        client.disconnect()
        await deleteRedisNamespace(admin, namespace)
        await admin.quit()
      },
    }
  },
}

const postgres: NetworkBackend = {
  name: 'postgres',
  target: SERVICES.postgres,
  commitMarker: 'COMMIT',
  gate: postgresGate,
  open: async (proxy) => {
    const table = `kwf_${uniqueSuffix()}`
    const pool = new pg.Pool({
      ...SERVICES.postgres,
      host: '127.0.0.1',
      port: proxy.port,
      max: 4,
      connectionTimeoutMillis: CLIENT_TIMEOUT_MS,
      // Client-side: also covers a stalled network, which a server-side statement_timeout never sees.
      query_timeout: CLIENT_TIMEOUT_MS,
    })
    // An idle client whose connection dies is reported here; the pool has already dropped it.
    pool.on('error', () => undefined)
    const admin = new pg.Pool({ ...SERVICES.postgres, max: 2 })
    const direct = new PostgresStore({ pool: admin, table })
    await direct.migrate()
    const store = new PostgresStore({ pool, table })
    return {
      store,
      direct,
      // pg-pool drops a client whose connection ended; no single event covers clients still connecting.
      disconnected: () => noneOpen(() => pool.totalCount, 'pg clients'),
      // One call, which must succeed: it also opens the connection the next request would have to
      // open within the middleware's deadline, on a machine that may be loaded.
      recovered: async () => void (await store.get('recovered')),
      close: async () => {
        await pool.end()
        await admin.query(`DROP TABLE IF EXISTS "${table}", "${table}_usage", "${table}_audit"; DROP FUNCTION IF EXISTS "${table}_consume"`)
        await admin.end()
      },
    }
  },
}

const mariadb: NetworkBackend = {
  name: 'mariadb',
  target: SERVICES.mariadb,
  commitMarker: 'COMMIT',
  gate: mariadbGate,
  open: async (proxy) => {
    const table = `kwf_${uniqueSuffix()}`
    const pool = mysql.createPool({ ...SERVICES.mariadb, host: '127.0.0.1', port: proxy.port, connectionLimit: 4, connectTimeout: CLIENT_TIMEOUT_MS })
    const admin = mysql.createPool({ ...SERVICES.mariadb, connectionLimit: 2 })
    const direct = new MySqlStore({ pool: admin, table })
    await direct.migrate()
    const open = () => (pool.pool as unknown as { _allConnections: { length: number } })._allConnections.length
    const store = new MySqlStore({ pool: withQueryTimeout(pool, CLIENT_TIMEOUT_MS), table })
    return {
      store,
      direct,
      // mysql2 removes a pooled connection when it ends; it has no public event or count for it.
      disconnected: () => noneOpen(open, 'mysql2 connections'),
      recovered: async () => void (await store.get('recovered')),
      close: async () => {
        await pool.end()
        await admin.query(`DROP TABLE IF EXISTS \`${table}\`, \`${table}_locks\`, \`${table}_usage\`, \`${table}_audit\``)
        await admin.end()
      },
    }
  },
}

/** Resolves once `count()` is 0, polling for up to 2 s; fails with `what` still open after that. */
async function noneOpen(count: () => number, what: string): Promise<void> {
  await vi.waitFor(
    () => {
      if (count() !== 0) throw new Error(`${what} still open`)
    },
    { timeout: 2_000, interval: 5 },
  )
}

/** Redis, PostgreSQL and MariaDB, each with a proxied client configured as docs/stores/README.md recommends. */
export const NETWORK_BACKENDS = { redis, postgres, mariadb } as const
