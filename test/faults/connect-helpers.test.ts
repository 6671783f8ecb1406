/**
 * The client settings of the helpers that create their own client (`RedisStore.connect`,
 * `PostgresStore.connect`, `MySqlStore.connect`, `SqliteStore.open`), proved on a faulty link or a held lock. The clients'
 * timers are faked where the limit is seconds long; the network and the servers are real.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { RedisStore } from '../../adapters/redis/index.js'
import { MySqlStore, PostgresStore, SqliteStore } from '../../adapters/sql/index.js'
import { ConfigError, KeyManager, StoreError, type KeyStore } from '../../src/index.js'
import { deleteRedisNamespace, SERVICES, uniqueSuffix } from '../support/services.js'
import { Database } from '../support/sqlite.js'
import { TcpProxy } from '../support/tcp-proxy.js'
import { failure, hookedStore, PEPPER } from './describe-network-faults.js'
import { NETWORK_BACKENDS } from './network-backends.js'

/** The outcome of `promise` so far, without waiting for it. */
function track(promise: Promise<unknown>) {
  const state: { status: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { status: 'pending' }
  promise.then(
    () => void (state.status = 'resolved'),
    (error: unknown) => Object.assign(state, { status: 'rejected', error }),
  )
  return state
}

const cleanup: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  vi.useRealTimers()
  for (const step of cleanup.splice(0).reverse()) await step()
})

const manager = (store: KeyStore) => new KeyManager({ store, prefix: 'acme', environments: ['live'], pepper: PEPPER })

/** A proxy to `target`, closed after the test. */
async function proxyTo(target: { host: string; port: number }) {
  const proxy = await TcpProxy.start(target)
  cleanup.push(() => proxy.close())
  return proxy
}

/**
 * Starts `call` while `proxy` is stalled (or stalls on the way) and proves, on faked timers, that its
 * request is held, that it still waits at 4.99 s and has failed with a StoreError at 5.01 s. Returns that error.
 */
async function expectStoreErrorAt5s(proxy: TcpProxy, call: () => Promise<unknown>) {
  const state = track(call())
  await proxy.nextHeld('request')
  await vi.advanceTimersByTimeAsync(4_990)
  expect(state.status).toBe('pending')
  await vi.advanceTimersByTimeAsync(20)
  expect(state.status).toBe('rejected')
  expect(state.error).toBeInstanceOf(StoreError)
  return state.error as StoreError
}

/** Runs `call` and proves it fails with a StoreError after `minMs` at the earliest and before `maxMs`. */
async function expectStoreErrorBetween(call: () => Promise<unknown>, minMs: number, maxMs: number) {
  const { error, ms } = await failure(call)
  expect(error).toBeInstanceOf(StoreError)
  expect(ms).toBeGreaterThanOrEqual(minMs)
  expect(ms).toBeLessThan(maxMs)
}

const redis = await NETWORK_BACKENDS.redis.gate()
describe.skipIf(!redis.available)('RedisStore.connect', () => {
  it('limits each command to 5 s, and never sends a timed-out write again after reconnecting', async () => {
    const proxy = await proxyTo(SERVICES.redis)
    const namespace = `kwf${uniqueSuffix()}`
    const store = await RedisStore.connect(`redis://127.0.0.1:${proxy.port}`, { namespace })
    cleanup.push(async () => {
      await store.close().catch(() => undefined)
      const admin = new Redis(SERVICES.redis)
      await deleteRedisNamespace(admin, namespace)
      await admin.quit()
    })
    const { store: hooked, hooks } = hookedStore(store)
    const keys = manager(hooked)
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })

    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    hooks.update = () => proxy.stall() // the update goes out on a stalled link, and stays there
    await expectStoreErrorAt5s(proxy, () => keys.revoke(key.id))
    vi.useRealTimers()

    // The connection dies with the update unanswered; once the client is back, it must not replay it.
    proxy.cut()
    await proxy.restore()
    const after = await vi.waitFor(() => store.get(key.id), { timeout: 3_000, interval: 20 })
    expect(after?.revokedAt).toBeNull()
    expect((await keys.verify(token)).valid).toBe(true)
  })
})

const postgres = await NETWORK_BACKENDS.postgres.gate()
describe.skipIf(!postgres.available)('PostgresStore.connect', () => {
  async function connectThrough(proxy: TcpProxy, extra: Record<string, unknown> | null) {
    const { user, database } = SERVICES.postgres
    const table = `kwf_${uniqueSuffix()}`
    const admin = new pg.Pool({ ...SERVICES.postgres, max: 1 })
    await new PostgresStore({ pool: admin, table }).migrate()
    const store =
      extra === null
        ? await PostgresStore.connect(`postgres://${user}@127.0.0.1:${proxy.port}/${database}`, { table })
        : await PostgresStore.connect({ ...SERVICES.postgres, host: '127.0.0.1', port: proxy.port, ...extra }, { table })
    cleanup.push(async () => {
      await store.close()
      await admin.query(`DROP TABLE IF EXISTS "${table}", "${table}_usage", "${table}_audit"; DROP FUNCTION IF EXISTS "${table}_consume"`)
      await admin.end()
    })
    return store
  }

  it('limits each query and each new connection to 5 s', async () => {
    const proxy = await proxyTo(SERVICES.postgres)
    const store = await connectThrough(proxy, null)
    const keys = manager(store)
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })

    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    proxy.stall()
    await expectStoreErrorAt5s(proxy, () => keys.get(key.id)) // on the pool's idle connection
    await expectStoreErrorAt5s(proxy, () => keys.get(key.id)) // that connection is gone: a new one, whose startup stalls
    vi.useRealTimers()

    await proxy.restore()
    expect((await keys.verify(token)).valid).toBe(true)
  })

  it('keeps the time limits given in the options', async () => {
    const proxy = await proxyTo(SERVICES.postgres)
    const store = await connectThrough(proxy, { query_timeout: 200 })
    await store.get('warm-up')
    proxy.stall()
    await expectStoreErrorBetween(() => store.get('nothing'), 190, 2_000)
  })
})

const mariadb = await NETWORK_BACKENDS.mariadb.gate()
describe.skipIf(!mariadb.available)('MySqlStore.connect', () => {
  /** A store made by `MySqlStore.connect` through `proxy`: from a URL when `config` is null, else from a pool config. */
  async function connectThrough(proxy: TcpProxy, config: Record<string, unknown> | null, options: { queryTimeout?: number | false } = {}) {
    const { user, password, database } = SERVICES.mariadb
    const table = `kwf_${uniqueSuffix()}`
    const admin = mysql.createPool({ ...SERVICES.mariadb, connectionLimit: 1 })
    await new MySqlStore({ pool: admin, table }).migrate()
    const url = `mysql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${proxy.port}/${database}`
    const store =
      config === null
        ? await MySqlStore.connect(url, { table, ...options })
        : await MySqlStore.connect({ ...SERVICES.mariadb, host: '127.0.0.1', port: proxy.port, ...config }, { table, ...options })
    cleanup.push(async () => {
      await store.close()
      await admin.query(`DROP TABLE IF EXISTS \`${table}\`, \`${table}_locks\`, \`${table}_usage\`, \`${table}_audit\``)
      await admin.end()
    })
    return store
  }

  it('limits each statement to 5 s', async () => {
    const proxy = await proxyTo(SERVICES.mariadb)
    const store = await connectThrough(proxy, null)
    const keys = manager(store)
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })

    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    proxy.stall()
    const error = await expectStoreErrorAt5s(proxy, () => keys.get(key.id)) // on the pool's idle connection
    expect(error.cause).toMatchObject({ code: 'PROTOCOL_SEQUENCE_TIMEOUT' })
    expect(String(error.cause)).not.toContain(key.id) // no parameter values
    vi.useRealTimers()

    // The timed-out connection was destroyed, not pooled again: the next call opens a fresh one.
    await proxy.restore()
    expect((await keys.verify(token)).valid).toBe(true)
  })

  it('keeps the time limits given: queryTimeout in the options, connectTimeout in the pool config', async () => {
    const proxy = await proxyTo(SERVICES.mariadb)
    const store = await connectThrough(proxy, { connectTimeout: 300 }, { queryTimeout: 300 })
    await store.get('warm-up')
    proxy.stall()
    await expectStoreErrorBetween(() => store.get('nothing'), 290, 2_000)
    await expectStoreErrorBetween(() => store.get('nothing'), 290, 2_000) // a new connection, whose handshake stalls
    await proxy.restore()
    expect(await store.get('nothing')).toBeNull()
  })

  it('leaves statements unbounded with queryTimeout: false', async () => {
    const proxy = await proxyTo(SERVICES.mariadb)
    const store = await connectThrough(proxy, null, { queryTimeout: false })
    await store.get('warm-up')

    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    proxy.stall()
    const read = track(store.get('nothing'))
    await proxy.nextHeld('request')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(read.status).toBe('pending')
    vi.useRealTimers()

    await proxy.restore() // the held statement reaches the server and is answered
    await vi.waitFor(() => expect(read.status).toBe('resolved'))
  })
})

describe('MySqlStore.connect options', () => {
  // mysql2 arms its connect timer through node:timers, which fake timers do not replace: the default is
  // read from the configuration mysql2 ends up with (createPool opens no connection), and the given
  // limit is proved on a stalled handshake above.
  it('sets connectTimeout to 5 s unless the pool config or the URL sets it', async () => {
    const createPool = vi.spyOn(mysql, 'createPool')
    cleanup.push(() => createPool.mockRestore())
    const connectTimeout = async (...args: Parameters<typeof MySqlStore.connect>) => {
      const store = await MySqlStore.connect(...args)
      const pool = createPool.mock.results.at(-1)?.value as { pool: { config: { connectionConfig: { connectTimeout: number } } } }
      await store.close()
      return pool.pool.config.connectionConfig.connectTimeout
    }
    expect(await connectTimeout('mysql://root@127.0.0.1:1/app')).toBe(5_000)
    expect(await connectTimeout({ host: '127.0.0.1', port: 1 })).toBe(5_000)
    expect(await connectTimeout({ host: '127.0.0.1', port: 1, connectTimeout: 1_234 })).toBe(1_234)
    expect(await connectTimeout('mysql://root@127.0.0.1:1/app?connectTimeout=1234')).toBe(1_234)
    expect(await connectTimeout({ uri: 'mysql://root@127.0.0.1:1/app?connectTimeout=1234' })).toBe(1_234)
  })

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '5000', true, null])(
    'refuses queryTimeout %s with a ConfigError, before opening a pool',
    async (queryTimeout) => {
      // Port 1: nothing is listening, yet no connection is attempted: the options are checked first.
      const error = await MySqlStore.connect('mysql://root@127.0.0.1:1/app', { queryTimeout: queryTimeout as never }).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(ConfigError)
      expect((error as ConfigError).issues).toEqual([{ path: ['queryTimeout'], message: expect.stringContaining('or false for no limit') }])
    },
  )
})

// SqliteStore.open imports the project's own better-sqlite3 (12, built for Node 20); on the Node 24 CI run
// the SQLite suites use a 13 install instead (KEYWARDEN_SQLITE_MODULE), so this one runs on 20 only.
describe.skipIf(process.env.KEYWARDEN_SQLITE_MODULE !== undefined)('SqliteStore.open', () => {
  const directory = mkdtempSync(join(tmpdir(), 'keywarden-open-faults-'))
  afterAll(() => rmSync(directory, { recursive: true, force: true }))

  it('waits about 1 s, not better-sqlite3\'s 5 s, for another connection\'s write lock', async () => {
    const file = join(directory, 'keys.db')
    const store = await SqliteStore.open(file, { table: `kwf_${uniqueSuffix()}` })
    await store.migrate()
    const locker = new Database(file)
    cleanup.push(async () => {
      if (locker.inTransaction) locker.exec('ROLLBACK')
      locker.close()
      await store.close()
    })
    const keys = manager(store)
    const input = { name: 'x', environment: 'live', idempotencyKey: randomUUID() }
    locker.exec('BEGIN IMMEDIATE')
    await expectStoreErrorBetween(() => keys.create(input), 950, 2_500)
    locker.exec('ROLLBACK')
    expect((await keys.verify((await keys.create(input)).token)).valid).toBe(true)
  })
})
