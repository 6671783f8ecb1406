import { afterAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { importDriver } from '../../adapters/driver.js'
import { RedisStore } from '../../adapters/redis/index.js'
import { MySqlStore, PostgresStore, SqliteStore, type SqlStore } from '../../adapters/sql/index.js'
import { ConfigError, KeyManager, StoreError, type KeyStore } from '../../src/index.js'
import { deleteRedisNamespace, gateService, SERVICES, uniqueSuffix } from '../support/services.js'

describe('importDriver', () => {
  it('turns a missing driver into a ConfigError that says what to install', async () => {
    const missing = async () => {
      throw Object.assign(new Error("Cannot find package 'pg' imported from /app/index.js"), { code: 'ERR_MODULE_NOT_FOUND' })
    }
    const error = await importDriver('pg', 'pg', 'PostgresStore.connect', missing).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).message).toContain("PostgresStore.connect needs the 'pg' package: run npm install pg")
    expect((error as ConfigError).cause).toBeInstanceOf(Error)
  })

  it('passes other failures on unchanged', async () => {
    const broken = new Error('syntax error in driver')
    await expect(importDriver('pg', 'pg', 'PostgresStore.connect', async () => Promise.reject(broken))).rejects.toBe(broken)
  })

  it('unwraps CommonJS default exports', async () => {
    const Pool = class {}
    expect(await importDriver('pg', 'pg', 'x', async () => ({ default: { Pool } }))).toEqual({ Pool })
  })
})

describe('client-less constructors name what to install', () => {
  it.each([
    [() => new PostgresStore({} as never), 'npm install pg'],
    [() => new MySqlStore({} as never), 'npm install mysql2'],
    [() => new SqliteStore({} as never), 'npm install better-sqlite3'],
  ])('%#', (build, hint) => {
    expect(build).toThrow(ConfigError)
    expect(build).toThrow(hint)
  })
})

/** Creates, verifies and revokes a key through a store that a connect helper made, then closes it. */
async function roundTrip(store: KeyStore & { close(): Promise<void> }) {
  const keys = new KeyManager({ store, pepper: 'driver-test-pepper-0123456789' })
  const { key, token } = await keys.create({ name: 'via connect', environment: 'live' })
  expect((await keys.verify(token)).valid).toBe(true)
  await keys.revoke(key.id)
  await store.close()
  // The owned client is gone: the store now fails as a store does, never silently.
  await expect(store.get(key.id)).rejects.toBeInstanceOf(StoreError)
}

const directory = mkdtempSync(join(tmpdir(), 'keywarden-open-'))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

describe('connect helpers that own their client', () => {
  // SqliteStore.open imports the project's own better-sqlite3 (12, built for Node 20); on the Node 24 CI
  // run the SQLite suites use a 13 install instead (KEYWARDEN_SQLITE_MODULE), so this one runs on 20 only.
  it.skipIf(process.env.KEYWARDEN_SQLITE_MODULE !== undefined)('SqliteStore.open opens a WAL database file and closes it on close()', async () => {
    const store = await SqliteStore.open(join(directory, 'keys.db'), { table: `kw_${uniqueSuffix()}` })
    await store.migrate()
    await roundTrip(store)
  })
})

const postgres = await gateService('PostgreSQL', async () => {
  const store = await PostgresStore.connect({ ...SERVICES.postgres, connectionTimeoutMillis: 3000 })
  await store.close()
  return 'PostgreSQL (via PostgresStore.connect)'
})
describe.skipIf(!postgres.available)('PostgresStore.connect', () => {
  it('creates a pool from a URL and ends it on close()', async () => {
    const { host, port, user, database } = SERVICES.postgres
    const table = `kw_${uniqueSuffix()}`
    const store: SqlStore = await PostgresStore.connect(`postgres://${user}@${host}:${port}/${database}`, { table })
    try {
      await store.migrate()
      await roundTrip(store)
    } finally {
      const admin = new pg.Client(SERVICES.postgres)
      await admin.connect()
      await admin.query(`DROP TABLE IF EXISTS "${table}"`)
      await admin.end()
    }
  })
})

const mariadb = await gateService('MariaDB', async () => {
  const store = await MySqlStore.connect({ ...SERVICES.mariadb, connectTimeout: 3000 })
  await store.close()
  return 'MariaDB (via MySqlStore.connect)'
})
describe.skipIf(!mariadb.available)('MySqlStore.connect', () => {
  it('creates a pool from a URL and ends it on close()', async () => {
    const { host, port, user, database } = SERVICES.mariadb
    const table = `kw_${uniqueSuffix()}`
    const store = await MySqlStore.connect(`mysql://${user}@${host}:${port}/${database}`, { table })
    try {
      await store.migrate()
      await roundTrip(store)
    } finally {
      const admin = await mysql.createConnection(SERVICES.mariadb)
      await admin.query(`DROP TABLE IF EXISTS \`${table}\`, \`${table}_locks\``)
      await admin.end()
    }
  })
})

const redis = await gateService('Redis', async () => {
  const store = await RedisStore.connect(`redis://${SERVICES.redis.host}:${SERVICES.redis.port}`)
  await store.close()
  return 'Redis (via RedisStore.connect)'
})
describe.skipIf(!redis.available)('RedisStore.connect', () => {
  it('creates an ioredis client from a URL and quits it on close()', async () => {
    const namespace = `kw${uniqueSuffix()}`
    const store = await RedisStore.connect(`redis://${SERVICES.redis.host}:${SERVICES.redis.port}`, { namespace })
    try {
      await roundTrip(store)
    } finally {
      const admin = new Redis(SERVICES.redis)
      await deleteRedisNamespace(admin, namespace)
      await admin.quit()
    }
  })
})

describe('stores built from the client alone', () => {
  it('SqliteStore(database) uses the default table', async () => {
    const { Database } = await import('../support/sqlite.js')
    const database = new Database(':memory:')
    const store = new SqliteStore(database)
    expect(store.table).toBe('keywarden_keys')
    await store.migrate()
    const keys = new KeyManager({ store })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    expect((await keys.verify(token)).valid).toBe(true)
    database.close()
  })

  it('a missing options object is a ConfigError, not a TypeError', () => {
    for (const build of [() => new PostgresStore(undefined as never), () => new MySqlStore(undefined as never), () => new SqliteStore(undefined as never), () => new RedisStore(undefined as never)]) {
      expect(build).toThrow(ConfigError)
    }
  })
})

describe.skipIf(!redis.available)('RedisStore(client)', () => {
  it('uses the default namespace when given the client alone', async () => {
    const client = new Redis(SERVICES.redis)
    try {
      expect(new RedisStore(client).namespace).toBe('keywarden')
      expect(new RedisStore((args: string[]) => client.call(args[0]!, ...args.slice(1))).namespace).toBe('keywarden')
    } finally {
      await client.quit()
    }
  })
})

describe.skipIf(!postgres.available)('PostgresStore(pool)', () => {
  it('uses the default table when given the pool alone', async () => {
    const pool = new pg.Pool(SERVICES.postgres)
    try {
      expect(new PostgresStore(pool).table).toBe('keywarden_keys')
    } finally {
      await pool.end()
    }
  })
})

describe.skipIf(!mariadb.available)('MySqlStore(pool)', () => {
  it('uses the default table when given the pool alone', async () => {
    const pool = mysql.createPool(SERVICES.mariadb)
    try {
      expect(new MySqlStore(pool).table).toBe('keywarden_keys')
    } finally {
      await pool.end()
    }
  })
})
