import mysqlCallbacks from 'mysql2'
import mysql from 'mysql2/promise'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { MySqlStore, withQueryTimeout } from '../../adapters/sql/index.js'
import { describeKeyStore } from '../conformance/describe-key-store.js'
import { makeRecord, makeRichRecord } from '../conformance/records.js'
import { mariadbGate } from '../support/gates.js'
import { SERVICES, uniqueSuffix } from '../support/services.js'
import {
  expectBinaryIdentifiers,
  expectConfigError,
  expectEndToEnd,
  expectIdTakenBeforeQuota,
  expectStoreError,
  INVALID_TABLE_NAMES,
  migrationFileStatements,
  richSecrets,
} from './sql-shared.js'

const gate = await mariadbGate()

// Every session runs at UTC+13: instants must not notice.
const TIME_ZONE = '+13:00'
// More connections than parallel operations need to queue on, so the concurrency tests really race.
const pool = gate.available ? mysql.createPool({ ...SERVICES.mariadb, connectionLimit: 12 }) : undefined
pool?.pool.on('connection', (connection) => connection.query(`SET time_zone = '${TIME_ZONE}'`))
// Open every connection up front: a cold pool staggers the first operations and hides races.
beforeAll(async () => {
  await Promise.all(Array.from({ length: 12 }, () => pool?.query('SELECT SLEEP(0.05)')))
})
afterAll(() => pool?.end())

function db(): mysql.Pool {
  if (!pool) throw new Error('MariaDB is not available')
  return pool
}

function freshStore(table = `kw_${uniqueSuffix()}`): MySqlStore {
  return new MySqlStore({ pool: db(), table })
}

async function drop(store: MySqlStore): Promise<void> {
  await db().query(`DROP TABLE IF EXISTS \`${store.table}\`, \`${store.table}_locks\`, \`${store.table}_usage\`, \`${store.table}_audit\``)
}

describe.skipIf(!gate.available)('MySqlStore', () => {
  describeKeyStore(
    'mysql',
    async () => {
      const store = freshStore()
      await store.migrate()
      return store
    },
    { teardown: drop },
  )

  it('runs migrate() twice without harm and keeps the data', async () => {
    const store = freshStore()
    try {
      await store.migrate()
      await store.insert(makeRecord({ id: 'kept' }), null)
      await store.migrate()
      expect(await store.get('kept')).toEqual(makeRecord({ id: 'kept' }))
    } finally {
      await drop(store)
    }
  })

  it('ships adapters/sql/mysql/migration.sql (published as migrations/mysql.sql) with exactly the statements migrate() runs for the default table', async () => {
    const sent: string[] = []
    const released: string[] = []
    const answer = async (sql: string) => (sent.push(sql), [{ affectedRows: 0 }, undefined] as [unknown, unknown])
    const recorder = {
      execute: async () => expect.fail('migrate() runs on one connection, in the text protocol'),
      // One checked-out connection for the whole migration: the upgrade keeps its ALTER TABLE in a session variable.
      getConnection: async () => ({
        execute: async () => expect.fail('PREPARE and EXECUTE need the text protocol'),
        query: answer,
        beginTransaction: async () => expect.fail('migrate() needs no transaction'),
        commit: async () => undefined,
        rollback: async () => undefined,
        release: () => void released.push('release'),
        destroy: () => void released.push('destroy'),
      }),
    }
    await new MySqlStore({ pool: recorder }).migrate()
    expect(sent).toEqual(migrationFileStatements('mysql'))
    expect(released).toEqual(['release'])
  })

  it('accepts the shipped migration file applied by hand (table renamed) and migrate() afterwards', async () => {
    const store = freshStore()
    try {
      // In one session, as a migration tool applies a file: SET @… and PREPARE are per connection.
      const connection = await db().getConnection()
      try {
        for (const statement of migrationFileStatements('mysql')) await connection.query(statement.replaceAll('keywarden_keys', store.table))
      } finally {
        connection.release()
      }
      await store.migrate()
      expect(await store.insert(makeRichRecord(), { ownerId: 'owner-ü', tenantId: 'tenant-1', limit: 1 })).toBe('inserted')
      expect(await store.get(makeRichRecord().id)).toEqual(makeRichRecord())
    } finally {
      await drop(store)
    }
  })

  it('uses the configured table name; two tables do not share keys', async () => {
    const first = freshStore()
    const second = freshStore()
    try {
      await first.migrate()
      await second.migrate()
      await first.insert(makeRecord({ id: 'only-in-first' }), null)
      expect(await second.get('only-in-first')).toBeNull()
      const [rows] = await db().query<mysql.RowDataPacket[]>(`SELECT CAST(id AS CHAR) AS id FROM \`${first.table}\``)
      expect(rows).toEqual([{ id: 'only-in-first' }])
    } finally {
      await drop(first)
      await drop(second)
    }
  })

  it('defaults the table name to keywarden_keys and does no I/O in the constructor', () => {
    const calls: unknown[] = []
    const record = async (...args: unknown[]) => (calls.push(args), [[], undefined] as [unknown, unknown])
    const store = new MySqlStore({ pool: { execute: record, getConnection: async () => expect.fail('no I/O') } })
    expect(store.table).toBe('keywarden_keys')
    expect(calls).toEqual([])
  })

  it('throws ConfigError for an invalid table name or client', async () => {
    for (const table of INVALID_TABLE_NAMES) expectConfigError(() => new MySqlStore({ pool: db(), table: table as string }), 'table')
    for (const client of [undefined, null, {}, { execute: 'SELECT 1' }, { query: async () => [[], []] }, 'mysql://localhost']) {
      expectConfigError(() => new MySqlStore({ pool: client as never }), 'pool')
    }
    // The callback API of mysql2 (not mysql2/promise): the message says to call .promise().
    const callbacks = mysqlCallbacks.createPool(SERVICES.mariadb)
    try {
      expectConfigError(() => new MySqlStore({ pool: callbacks as never }), 'pool')
      expect(() => new MySqlStore({ pool: callbacks as never })).toThrow(/\.promise\(\)/)
      expect(new MySqlStore({ pool: callbacks.promise() }).table).toBe('keywarden_keys')
    } finally {
      await new Promise((resolve) => callbacks.end(resolve))
    }
    expectConfigError(() => new MySqlStore(undefined as never), 'pool')
  })

  it('wraps driver errors in StoreError with the cause and no SQL or values in the message', async () => {
    const store = freshStore()
    // The table was never created.
    const missing = await expectStoreError(store.insert(makeRichRecord(), null), 'insert', [store.table, ...richSecrets()])
    expect((missing.cause as { errno?: number }).errno).toBe(1146)
    await expectStoreError(store.list({ now: 0, order: 'asc', limit: 10, ownerId: 'owner-secret' }), 'list', ['owner-secret'])
    await expectStoreError(store.insert(makeRichRecord(), { ownerId: 'owner-ü', tenantId: 'tenant-1', limit: 5 }), 'insert', richSecrets())
    // A pool that has been ended.
    const ended = mysql.createPool(SERVICES.mariadb)
    await ended.end()
    const closed = new MySqlStore({ pool: ended })
    await expectStoreError(closed.get('some-id'), 'get', ['some-id'])
    await expectStoreError(closed.insert(makeRecord(), { ownerId: 'o', tenantId: null, limit: 1 }), 'insert')
  })

  it(`keeps instants and JSON exact with the session time_zone at ${TIME_ZONE}`, async () => {
    const store = freshStore()
    try {
      await store.migrate()
      const [zone] = await db().query<mysql.RowDataPacket[]>('SELECT @@session.time_zone AS zone')
      expect(zone[0]?.['zone']).toBe(TIME_ZONE)
      const rich = makeRichRecord()
      await store.insert(rich, null)
      expect(await store.get(rich.id)).toEqual(rich)
      const [raw] = await db().query<mysql.RowDataPacket[]>(`SELECT CAST(created_at AS CHAR) AS created, metadata_json FROM \`${store.table}\``)
      expect({ ...raw[0] }).toEqual({ created: String(rich.createdAt), metadata_json: JSON.stringify(rich.metadata) })
    } finally {
      await drop(store)
    }
  })

  it('compares and orders IDs and owners in binary: case and trailing spaces matter', async () => {
    const store = freshStore()
    try {
      await store.migrate()
      await expectBinaryIdentifiers(store)
    } finally {
      await drop(store)
    }
  })

  it('keeps quota inserts atomic through a single mysql2 connection', async () => {
    const connection = await mysql.createConnection(SERVICES.mariadb)
    const store = new MySqlStore({ pool: connection, table: `kw_${uniqueSuffix()}` })
    try {
      await store.migrate()
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => store.insert(makeRecord({ id: `c${i}`, ownerId: 'solo' }), { ownerId: 'solo', tenantId: null, limit: 2 })),
      )
      expect(results.filter((result) => result === 'inserted')).toHaveLength(2)
    } finally {
      await drop(store)
      await connection.end()
    }
  })

  it('keeps quota inserts atomic for many owners racing at once (no deadlock surfaces)', async () => {
    const store = freshStore()
    try {
      await store.migrate()
      const owners = Array.from({ length: 10 }, (_, i) => `owner${i}`)
      const attempts = owners.flatMap((ownerId) => Array.from({ length: 6 }, (_, i) => ({ ownerId, id: `${ownerId}-${i}` })))
      const results = await Promise.all(attempts.map(({ ownerId, id }) => store.insert(makeRecord({ id, ownerId }), { ownerId, tenantId: null, limit: 2 })))
      for (const ownerId of owners) {
        const won = attempts.filter((attempt, i) => attempt.ownerId === ownerId && results[i] === 'inserted')
        expect(won, ownerId).toHaveLength(2)
      }
    } finally {
      await drop(store)
    }
  })

  it('answers id_taken before quota_exceeded when both apply', async () => {
    const store = freshStore()
    try {
      await store.migrate()
      await expectIdTakenBeforeQuota(store)
    } finally {
      await drop(store)
    }
  })



  it('works end to end through KeyManager: create, verify, quota, rotate, revoke', async () => {
    const store = freshStore()
    try {
      await store.migrate()
      await expectEndToEnd(store)
    } finally {
      await drop(store)
    }
  })
})

describe('MySqlStore with a pool (no server needed)', () => {
  /** A mysql2 pool stand-in: `fail(sql)` may throw for any statement, ROLLBACK included. */
  function fakePool(fail: (sql: string) => void) {
    const sent: string[] = []
    const done: string[] = []
    const execute = async (sql: string): Promise<[unknown, unknown]> => {
      sent.push(sql)
      fail(sql)
      return [sql.startsWith('SELECT COUNT') ? [{ n: 0 }] : sql.startsWith('SELECT') ? [] : { affectedRows: 1 }, undefined]
    }
    const connection = {
      execute,
      beginTransaction: async () => void sent.push('BEGIN'),
      commit: async () => void sent.push('COMMIT'),
      rollback: async () => {
        sent.push('ROLLBACK')
        fail('ROLLBACK')
      },
      release: () => void done.push('release'),
      destroy: () => void done.push('destroy'),
    }
    return { store: new MySqlStore({ pool: { execute, getConnection: async () => connection } }), sent, done }
  }

  const deadlock = () => Object.assign(new Error('Deadlock found when trying to get lock'), { errno: 1213 })

  it('locks the owner row, runs the quota insert on a checked-out connection and releases it', async () => {
    const { store, sent, done } = fakePool(() => undefined)
    expect(await store.insert(makeRecord({ ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 })).toBe('inserted')
    expect(sent.map((sql) => sql.split(' ')[0])).toEqual(['INSERT', 'BEGIN', 'SELECT', 'SELECT', 'SELECT', 'INSERT', 'COMMIT'])
    expect(sent[0]).toMatch(/_locks` \(owner_id\) VALUES \(\?\) ON DUPLICATE KEY UPDATE/)
    expect(sent[2]).toMatch(/FOR UPDATE$/)
    expect(done).toEqual(['release'])
  })

  it('retries a deadlocked quota insert a bounded number of times', async () => {
    let deadlocks = 2
    const recovering = fakePool((sql) => {
      if (sql.startsWith('INSERT INTO `keywarden_keys` ') && deadlocks-- > 0) throw deadlock()
    })
    expect(await recovering.store.insert(makeRecord({ ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 })).toBe('inserted')
    expect(recovering.done).toEqual(['release', 'release', 'release'])

    const stuck = fakePool((sql) => {
      if (sql.startsWith('INSERT INTO `keywarden_keys` ')) throw deadlock()
    })
    const error = await expectStoreError(stuck.store.insert(makeRecord({ ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 }), 'insert')
    expect((error.cause as { errno?: number }).errno).toBe(1213)
    expect(stuck.done).toHaveLength(8)
  })

  it('destroys the connection when the rollback fails', async () => {
    const { store, done } = fakePool((sql) => {
      if (sql.startsWith('INSERT INTO `keywarden_keys` ') || sql === 'ROLLBACK') throw new Error('connection lost')
    })
    await expectStoreError(store.insert(makeRecord({ ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 }), 'insert')
    expect(done).toEqual(['destroy'])
  })
})

describe('withQueryTimeout (no server needed)', () => {
  afterEach(() => vi.useRealTimers())

  /** A mysql2 pool stand-in: `answer(sql)` runs for every statement (BEGIN, COMMIT, ROLLBACK included). */
  function fakePool(answer: (sql: string) => Promise<void> | void) {
    const done: string[] = []
    const statement = async (sql: string): Promise<[unknown, unknown]> => {
      await answer(sql)
      return [sql.startsWith('SELECT COUNT') ? [{ n: 0 }] : sql.startsWith('SELECT') ? [] : { affectedRows: 1 }, undefined]
    }
    const pool = {
      getConnection: async () => ({
        execute: statement,
        beginTransaction: async () => void (await answer('BEGIN')),
        commit: async () => void (await answer('COMMIT')),
        rollback: async () => void (await answer('ROLLBACK')),
        release: () => void done.push('release'),
        destroy: () => void done.push('destroy'),
      }),
    }
    return { store: new MySqlStore({ pool: withQueryTimeout(pool, 100) }), done }
  }
  const never = () => new Promise<void>(() => undefined)

  it('throws ConfigError naming timeout or pool', async () => {
    const pool = { getConnection: async () => expect.fail('no I/O') }
    for (const timeout of [0, -5, 2.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '100', '0s', '25d', null, undefined]) {
      expectConfigError(() => withQueryTimeout(pool, timeout as never), 'timeout')
    }
    expect(withQueryTimeout(pool, 2 ** 31 - 1).getConnection).toBeTypeOf('function')
    expect(withQueryTimeout(pool, '5s').getConnection).toBeTypeOf('function')
    for (const client of [undefined, null, {}, { execute: async () => [[], []], beginTransaction: async () => undefined }]) {
      expectConfigError(() => withQueryTimeout(client as never, 100), 'pool')
    }
    const callbacks = mysqlCallbacks.createPool(SERVICES.mariadb) // no connection until used
    try {
      expect(() => withQueryTimeout(callbacks as never, 100)).toThrow(/\.promise\(\)/)
    } finally {
      await new Promise((resolve) => callbacks.end(resolve))
    }
  })

  it('fails a statement that takes too long without its values, and destroys its connection', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const { store, done } = fakePool((sql) => (sql.startsWith('SELECT') ? never() : undefined))
    const read = expectStoreError(store.get('secret-id-value'), 'get', ['secret-id-value'])
    await vi.advanceTimersByTimeAsync(99)
    expect(done).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    const error = await read
    expect(error.cause).toMatchObject({ code: 'PROTOCOL_SEQUENCE_TIMEOUT', message: 'The statement took longer than 100 ms' })
    expect(done).toEqual(['destroy'])
  })

  it('destroys a connection whose COMMIT times out once, never releasing it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const { store, done } = fakePool((sql) => (sql === 'COMMIT' ? never() : undefined))
    const insert = expectStoreError(store.insert(makeRecord({ ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 }), 'insert')
    await vi.advanceTimersByTimeAsync(100)
    await insert
    // The autocommit lock-row insert released its connection; the transaction's was destroyed.
    expect(done).toEqual(['release', 'destroy'])
  })

  it('destroys a connection whose link broke, and releases one after an ordinary error', async () => {
    const reset = fakePool(() => {
      throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
    })
    await expectStoreError(reset.store.get('x'), 'get')
    expect(reset.done).toEqual(['destroy'])

    const fatal = fakePool(() => {
      throw Object.assign(new Error('Connection lost: The server closed the connection.'), { fatal: true })
    })
    await expectStoreError(fatal.store.get('x'), 'get')
    expect(fatal.done).toEqual(['destroy'])

    const missing = fakePool(() => {
      throw Object.assign(new Error("Table 'keywarden_keys' doesn't exist"), { errno: 1146, code: 'ER_NO_SUCH_TABLE' })
    })
    await expectStoreError(missing.store.get('x'), 'get')
    expect(missing.done).toEqual(['release'])

    const fine = fakePool(() => undefined)
    expect(await fine.store.get('x')).toBeNull()
    expect(fine.done).toEqual(['release'])
  })
})
