/**
 * The gates of the three test servers, probed once per test process: every suite that needs Redis,
 * PostgreSQL or MariaDB awaits the same gate (skip visibly locally, fail under CI=true; see services.ts).
 *
 * @example
 * ```ts
 * const gate = await redisGate()
 * describe.skipIf(!gate.available)('RedisStore', () => { ... })
 * ```
 */
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { gateService, SERVICES, type ServiceGate } from './services.js'

function once(probe: () => Promise<ServiceGate>): () => Promise<ServiceGate> {
  let gate: Promise<ServiceGate> | undefined
  return () => (gate ??= probe())
}

export const redisGate = once(() =>
  gateService('Redis', async () => {
    const probe = new Redis({ ...SERVICES.redis, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    // ioredis rejects connect() with "Connection is closed"; the 'error' event has the reason (ECONNREFUSED).
    let failure: unknown
    probe.on('error', (error) => (failure = error))
    try {
      await probe.connect().catch((error: unknown) => {
        throw failure ?? error
      })
      return `Redis ${/redis_version:(\S+)/.exec(await probe.info('server'))?.[1] ?? '(unknown version)'}`
    } finally {
      probe.disconnect()
    }
  }),
)

export const postgresGate = once(() =>
  gateService('PostgreSQL', async () => {
    const probe = new pg.Client({ ...SERVICES.postgres, connectionTimeoutMillis: 3_000 })
    await probe.connect()
    try {
      return `PostgreSQL ${(await probe.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version}`
    } finally {
      await probe.end()
    }
  }),
)

export const mariadbGate = once(() =>
  gateService('MariaDB', async () => {
    const probe = await mysql.createConnection({ ...SERVICES.mariadb, connectTimeout: 3_000 })
    try {
      const [rows] = await probe.query<mysql.RowDataPacket[]>('SELECT VERSION() AS version')
      const version = String(rows[0]!['version'])
      return version.includes('MariaDB') ? `MariaDB ${version}` : `MySQL ${version}`
    } finally {
      await probe.end()
    }
  }),
)
