/**
 * SQLite's fault is contention, not the network: another connection (another process, a backup, a
 * migration) holds the database's write lock. better-sqlite3 waits `busy_timeout` for it, synchronously,
 * then fails with SQLITE_BUSY. Here a second connection holds `BEGIN IMMEDIATE` on the same WAL file
 * while the store's connection uses a small busy timeout.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { SqliteStore } from '../../adapters/sql/index.js'
import { KeyManager, QuotaExceededError, StoreError, type CreateKeyInput } from '../../src/index.js'
import type { Rejection } from '../../src/http/request-verifier.js'
import { rawRequest, startServer, type RawResponse, type TestServer } from '../http/servers.js'
import { uniqueSuffix } from '../support/services.js'
import { Database } from '../support/sqlite.js'
import { BOUND_MS, failure, MIDDLEWARE_TIMEOUT_MS, PEPPER } from './describe-network-faults.js'

/** The store connection's busy timeout, in milliseconds: how long a write waits for the lock. */
const BUSY_MS = 100

const directory = mkdtempSync(join(tmpdir(), 'keywarden-faults-'))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

async function send(server: TestServer, token: string): Promise<{ response: RawResponse; ms: number }> {
  const started = performance.now()
  const response = await rawRequest(server.port, [`Authorization: Bearer ${token}`])
  return { response, ms: performance.now() - started }
}

describe('sqlite while another connection holds the write lock (WAL)', () => {
  const file = join(directory, 'wal.db')
  let database: Database
  let locker: Database
  let keys: KeyManager
  let server: TestServer
  let store: SqliteStore
  const rejections: Rejection[] = []
  const usageErrors: unknown[] = []

  beforeAll(async () => {
    database = new Database(file)
    database.pragma('journal_mode = WAL')
    database.pragma(`busy_timeout = ${BUSY_MS}`)
    locker = new Database(file)
    store = new SqliteStore({ database, table: `kwf_${uniqueSuffix()}` })
    await store.migrate()
    keys = new KeyManager({
      store,
      prefix: 'acme',
      environments: ['live'],
      pepper: PEPPER,
      maxKeysPerOwner: 1,
      usage: { onError: (error) => void usageErrors.push(error) },
    })
    server = await startServer('express', keys, { timeout: `${MIDDLEWARE_TIMEOUT_MS}ms`, onReject: (rejection) => void rejections.push(rejection) })
  })
  beforeEach(() => {
    rejections.length = 0
    usageErrors.length = 0
  })
  afterEach(() => {
    if (locker.inTransaction) locker.exec('ROLLBACK')
  })
  afterAll(async () => {
    await keys.close()
    await server.close()
    locker.close()
    database.close()
  })

  const lock = () => locker.exec('BEGIN IMMEDIATE')
  const unlock = () => locker.exec('ROLLBACK')
  const issue = () => keys.create({ name: 'fault case', ownerId: `owner-${uniqueSuffix()}`, environment: 'live', scopes: ['data:read'] })
  const stored = (ownerId: string) => store.list({ ownerId, now: Date.now(), order: 'asc', limit: 10 })

  it('verify keeps answering 200 at once: WAL readers never wait for the write lock', async () => {
    const { token } = await issue()
    lock()
    const answers = await Promise.all(Array.from({ length: 8 }, () => send(server, token)))
    for (const { response, ms } of answers) {
      expect(response.status).toBe(200)
      expect(ms).toBeLessThan(BOUND_MS)
    }
    expect(rejections).toEqual([])
  })

  it('create rejects with StoreError after the busy timeout, writes nothing, and a retry after the lock issues exactly one key', async () => {
    const input: CreateKeyInput = { name: 'ci', ownerId: `owner-${uniqueSuffix()}`, environment: 'live', scopes: ['data:read'], idempotencyKey: randomUUID() }
    lock()
    const { error, ms } = await failure(() => keys.create(input))
    expect(error).toBeInstanceOf(StoreError)
    expect((error as StoreError).cause).toMatchObject({ code: 'SQLITE_BUSY' })
    expect(ms).toBeGreaterThanOrEqual(BUSY_MS - 5)
    expect(ms).toBeLessThan(BOUND_MS)
    expect(await stored(input.ownerId!)).toEqual([])
    unlock()
    const retried = await keys.create(input)
    expect((await send(server, retried.token)).response.status).toBe(200)
    expect((await keys.create(input)).token).toBe(retried.token)
    expect((await stored(input.ownerId!)).map((record) => record.id)).toEqual([retried.key.id])
    expect((await failure(() => keys.create({ ...input, idempotencyKey: randomUUID() }))).error).toBeInstanceOf(QuotaExceededError)
  })

  it('rotate rejects with StoreError, leaves the key as it was, and a retry after the lock rotates once', async () => {
    const { key, token } = await issue()
    const before = await store.get(key.id)
    const idempotencyKey = randomUUID()
    lock()
    const { error, ms } = await failure(() => keys.rotate(key.id, { idempotencyKey }))
    expect(error).toBeInstanceOf(StoreError)
    expect(ms).toBeLessThan(BOUND_MS)
    expect(await store.get(key.id)).toEqual(before)
    expect((await send(server, token)).response.status).toBe(200) // still readable, still valid
    unlock()
    const rotated = await keys.rotate(key.id, { idempotencyKey })
    expect((await send(server, rotated.token)).response.status).toBe(200)
    expect((await send(server, token)).response.status).toBe(401)
    expect((await keys.rotate(key.id, { idempotencyKey })).token).toBe(rotated.token)
    expect((await store.get(key.id))?.version).toBe(before!.version + 1)
  })

  it('revoke rejects with StoreError and the key still verifies; after the lock it revokes', async () => {
    const { key, token } = await issue()
    lock()
    const { error, ms } = await failure(() => keys.revoke(key.id))
    expect(error).toBeInstanceOf(StoreError)
    expect(ms).toBeLessThan(BOUND_MS)
    expect((await store.get(key.id))?.revokedAt).toBeNull()
    expect((await send(server, token)).response.status).toBe(200)
    unlock()
    await keys.revoke(key.id)
    expect((await send(server, token)).response.status).toBe(401)
  })

  it('a usage flush under the lock reports the failure, keeps the uses for later, and blocks the event loop for one busy timeout, not one per key', async () => {
    const issued = await Promise.all(Array.from({ length: 10 }, () => issue()))
    for (const { token } of issued) expect((await keys.verify(token)).valid).toBe(true)
    lock()
    const started = performance.now()
    await keys.flush()
    const ms = performance.now() - started
    expect(usageErrors).toHaveLength(1)
    expect(ms).toBeLessThan(3 * BUSY_MS)
    unlock()
    await keys.flush()
    expect(usageErrors).toHaveLength(1)
    for (const { key } of issued) expect((await store.get(key.id))?.lastUsedAt).not.toBeNull()
  })
})

describe('sqlite while another connection holds an exclusive lock (rollback journal: readers wait too)', () => {
  const file = join(directory, 'rollback.db')
  let database: Database
  let locker: Database
  let keys: KeyManager
  let server: TestServer
  const rejections: Rejection[] = []

  beforeAll(async () => {
    database = new Database(file)
    database.pragma('journal_mode = DELETE')
    locker = new Database(file)
    const store = new SqliteStore({ database, table: `kwf_${uniqueSuffix()}` })
    await store.migrate()
    keys = new KeyManager({ store, prefix: 'acme', environments: ['live'], pepper: PEPPER })
    server = await startServer('express', keys, { timeout: `${MIDDLEWARE_TIMEOUT_MS}ms`, onReject: (rejection) => void rejections.push(rejection) })
  })
  afterEach(() => {
    if (locker.inTransaction) locker.exec('ROLLBACK')
    rejections.length = 0
  })
  afterAll(async () => {
    await keys.close()
    await server.close()
    locker.close()
    database.close()
  })

  it('verify answers 503 with Retry-After after the busy timeout, never 200 or 401, and 200 once the lock is gone', async () => {
    database.pragma(`busy_timeout = ${BUSY_MS}`)
    const { token } = await keys.create({ name: 'x', environment: 'live', scopes: ['data:read'] })
    locker.exec('BEGIN EXCLUSIVE')
    const { response, ms } = await send(server, token)
    expect(response.status).toBe(503)
    expect(response.header('retry-after')).toBe('5')
    expect(ms).toBeGreaterThanOrEqual(BUSY_MS - 5)
    expect(ms).toBeLessThan(BOUND_MS)
    expect(rejections.map((rejection) => rejection.reason)).toEqual(['store_unavailable'])
    locker.exec('ROLLBACK')
    expect((await send(server, token)).response.status).toBe(200)
  })

  // better-sqlite3 waits synchronously: the whole event loop stops for the busy timeout, so the
  // middleware's timer cannot fire earlier. Keep busy_timeout below the middleware timeout.
  it('cannot be cut short by the middleware timeout: a busy timeout longer than it sets the response time', async () => {
    const busyMs = 2 * MIDDLEWARE_TIMEOUT_MS
    database.pragma(`busy_timeout = ${busyMs}`)
    const { token } = await keys.create({ name: 'x', environment: 'live', scopes: ['data:read'] })
    locker.exec('BEGIN EXCLUSIVE')
    const { response, ms } = await send(server, token)
    expect(response.status).toBe(503)
    expect(ms).toBeGreaterThanOrEqual(busyMs - 5)
    expect(ms).toBeLessThan(BOUND_MS)
    expect(rejections.map((rejection) => rejection.reason)).toEqual(['store_unavailable'])
  })
})
