/**
 * PostgresStore with a read replica (issue 15): verify reads on a real streaming standby, everything
 * else on the primary, and the lag guard that bounds how stale a verify may be. Needs the primary
 * (SERVICES.postgres) and its standby (`bash scripts/ci/start-pg-replica.sh`, see test/support/pg-replica.ts);
 * the last group needs neither.
 *
 * No fixed sleeps: every wait polls with a deadline, and the deadlines of the staleness cases are the
 * documented bounds (cache ttl + maxReplicaLag; maxReplicaLag without a cache).
 */
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { PostgresInvalidationChannel, PostgresStore, type PgPool, type PostgresStoreOptions } from '../../adapters/sql/index.js'
import { parseLsn } from '../../adapters/sql/postgres/replica-guard.js'
import { LocalInvalidationChannel, StoreError, type KeyManager, type KeyManagerOptions, type StoredKey, type VerifyResult } from '../../src/index.js'
import { describeKeyStore } from '../conformance/describe-key-store.js'
import { makeRecord, makeRichRecord } from '../conformance/records.js'
import { setup } from '../helpers.js'
import { postgresGate } from '../support/gates.js'
import { PG_REPLICA, pgReplicaGate } from '../support/pg-replica.js'
import { SERVICES, uniqueSuffix } from '../support/services.js'
import { TcpProxy } from '../support/tcp-proxy.js'
import { expectConfigError } from './sql-shared.js'

const primaryGate = await postgresGate()
// Only probed when the primary is there: without it, the replica cannot be checked against it.
const replicaGate = primaryGate.available ? await pgReplicaGate() : { available: false, version: null }
const available = primaryGate.available && replicaGate.available

/** The replica settings of these tests: small, so that the guard's switches happen within a test. */
const MAX_LAG_MS = 500
const CHECK_MS = 50
/** Date.now() (the KeyManager's clock) and performance.now() (the guard's) may disagree by a hair. */
const CLOCK_MARGIN_MS = 25

const primary = available ? new pg.Pool({ ...SERVICES.postgres, max: 12 }) : undefined
const replica = available ? new pg.Pool({ ...PG_REPLICA, max: 8 }) : undefined
beforeAll(async () => {
  await Promise.all(Array.from({ length: 8 }, () => Promise.all([primary?.query('SELECT 1'), replica?.query('SELECT 1')])))
})
afterAll(async () => {
  await replica?.query('SELECT pg_wal_replay_resume()').catch(() => undefined)
  await Promise.all([primary?.end(), replica?.end()])
})

function db(): pg.Pool {
  if (!primary) throw new Error('PostgreSQL is not available')
  return primary
}

function standby(): pg.Pool {
  if (!replica) throw new Error('The PostgreSQL read replica is not available')
  return replica
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `condition` every 10 ms until it holds; fails after `timeoutMs`. */
async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now()
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await delay(10)
  }
}

/**
 * Verifies until `done` holds, and fails unless it holds at the latest for the first verify that
 * started `boundMs` (plus the clock margin) after `since`: "seen within the bound", by polling.
 */
async function seenWithin(boundMs: number, since: number, verify: () => Promise<VerifyResult>, done: (result: VerifyResult) => boolean): Promise<VerifyResult> {
  const deadline = since + boundMs + CLOCK_MARGIN_MS
  for (;;) {
    const startedAt = Date.now()
    const result = await verify()
    if (done(result)) return result
    if (startedAt >= deadline) {
      expect.fail(`a verify that started ${startedAt - since} ms after the change (bound: ${boundMs} ms) still answered ${JSON.stringify(result)}`)
    }
    await delay(5)
  }
}

/** A pool stand-in that counts what it runs: verify reads (ok and failed) and lag checks. */
function countingPool(pool: pg.Pool) {
  const counts = { reads: 0, failedReads: 0, checks: 0, statements: [] as string[] }
  const counted: PgPool = {
    query: async (text: string, values?: unknown[]) => {
      const check = text.includes('pg_last_wal_replay_lsn')
      if (check) counts.checks++
      else counts.statements.push(text)
      try {
        const result = await pool.query(text, values)
        if (!check) counts.reads++
        return result
      } catch (error) {
        if (!check) counts.failedReads++
        throw error
      }
    },
    connect: () => pool.connect(),
    get totalCount() {
      return pool.totalCount
    },
  }
  return { pool: counted, counts }
}

/**
 * The replica errors a case did not cause: all but lag checks that took longer than the bound, which a
 * loaded machine may produce at any time (the guard then reads the primary, as it should).
 */
function unexpected(errors: readonly unknown[]): unknown[] {
  return errors.filter((error) => !(error instanceof StoreError && error.operation === 'replicaLagCheck' && /did not complete within/.test(String((error.cause as Error | undefined)?.message))))
}

const stores: PostgresStore[] = []

/** A store on a fresh (or the given) table, verify reads on `readPool`, replica errors collected. */
function replicaStore(options: { table?: string; readPool?: pg.Pool } & Omit<PostgresStoreOptions, 'pool' | 'readPool' | 'table'> = {}) {
  const errors: unknown[] = []
  const { pool: readPool, counts } = countingPool(options.readPool ?? standby())
  const store = new PostgresStore({
    maxReplicaLag: MAX_LAG_MS,
    replicaCheckInterval: CHECK_MS,
    onReplicaError: (error) => void errors.push(error),
    ...options,
    pool: db(),
    readPool,
    table: options.table ?? `kwr_${uniqueSuffix()}`,
  })
  stores.push(store)
  return { store, counts, errors }
}

async function drop(table: string): Promise<void> {
  await db().query(`DROP TABLE IF EXISTS "${table}", "${table}_usage", "${table}_audit"`)
  await db().query(`DROP FUNCTION IF EXISTS "${table}_consume"`)
}

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close()
})

/** Pauses WAL replay on the standby (the walreceiver keeps receiving), and waits until it is in effect. */
async function pauseReplay(): Promise<void> {
  await standby().query('SELECT pg_wal_replay_pause()')
  // 'pause requested' already stops replay before the next record; 'paused' once it has stopped.
  await until(async () => (await standby().query<{ state: string }>('SELECT pg_get_wal_replay_pause_state() AS state')).rows[0]?.state !== 'not paused', 5_000, 'replay to pause')
}

async function resumeReplay(): Promise<void> {
  await standby().query('SELECT pg_wal_replay_resume()')
}

/** What the standby itself holds for a key: its revoked_at, or undefined without the row. */
async function revokedOnReplica(table: string, id: string): Promise<unknown> {
  return (await standby().query(`SELECT revoked_at FROM "${table}" WHERE id = $1`, [id])).rows[0]?.revoked_at
}

/** Waits until the store's guard lets the replica answer (a read of an unknown ID reaches it). */
async function untilReplicaAnswers(store: PostgresStore, counts: { reads: number }): Promise<void> {
  await until(
    async () => {
      const before = counts.reads
      await store.getForVerify(`warm-up-${uniqueSuffix()}`)
      return counts.reads > before
    },
    5_000,
    'the replica to answer a verify read',
  )
}

function manager(store: PostgresStore, cache?: KeyManagerOptions['cache']): KeyManager {
  return setup({ store, clock: () => Date.now(), ...(cache === undefined ? {} : { cache }) }).keys
}

describe.skipIf(!available)('PostgresStore with a read replica', () => {
  describeKeyStore(
    'postgres, verify reads on a streaming replica',
    async () => {
      const { store } = replicaStore()
      await store.migrate()
      return store
    },
    {
      teardown: async (store) => {
        await store.close()
        await drop(store.table)
      },
    },
  )

  it('sends verify reads to the replica once it has caught up; writes, management reads, lists and audit stay on the primary', async () => {
    const { store, counts, errors } = replicaStore()
    try {
      await store.migrate()
      const keys = manager(store)
      const { key, token } = await keys.create({ name: 'replicated', environment: 'live', scopes: ['data:read'] })
      expect((await standby().query<{ recovery: boolean }>('SELECT pg_is_in_recovery() AS recovery')).rows[0]?.recovery).toBe(true)
      // The store wrote this key itself: verify reads it on the primary until the replica has it.
      await until(
        async () => {
          const before = counts.reads
          expect(await keys.verify(token, { scopes: ['data:read'] })).toMatchObject({ valid: true, key: { id: key.id } })
          return counts.reads > before
        },
        5_000,
        'a verify answered by the replica',
      )

      const replicaReads = counts.reads
      expect(await keys.get(key.id)).toMatchObject({ id: key.id, name: 'replicated' })
      expect((await keys.list()).items.map((item) => item.id)).toEqual([key.id])
      await keys.update(key.id, { name: 'renamed' })
      await keys.disable(key.id)
      await keys.enable(key.id)
      expect((await keys.audit({ keyId: key.id })).items.map((entry) => entry.action)).toContain('enabled')
      await keys.flush()
      expect(counts.reads).toBe(replicaReads)

      // Right after its own update, this store's verify still sees the new name (the primary answers),
      // and soon the replica does too.
      expect(await keys.verify(token)).toMatchObject({ valid: true, key: { name: 'renamed' } })
      await until(
        async () => {
          const before = counts.reads
          expect(await keys.verify(token)).toMatchObject({ valid: true, key: { name: 'renamed' } })
          return counts.reads > before
        },
        5_000,
        'the renamed key answered by the replica',
      )
      // Nothing but the read by ID ever reached the replica.
      for (const statement of counts.statements) expect(statement).toMatch(new RegExp(`^SELECT [a-z_, ]+ FROM "${store.table}" WHERE id = \\$1$`))
      expect(counts.checks).toBeGreaterThan(0)
      expect(unexpected(errors)).toEqual([])
    } finally {
      await drop(store.table)
    }
  })

  it('getForVerify on the replica answers exactly what get answers on the primary, and never misses a write of this store', async () => {
    const { store, counts, errors } = replicaStore()
    try {
      await store.migrate()
      const rich = makeRichRecord({ id: 'rich' })
      expect(await store.insert(rich, null)).toBe('inserted')
      await until(
        async () => {
          const before = counts.reads
          const read = await store.getForVerify('rich')
          expect(read).toEqual(rich)
          return counts.reads > before
        },
        5_000,
        'the rich record answered by the replica',
      )
      // Each write of this store is seen by the very next verify read, whichever server answers it.
      let current = (await store.get('rich'))!
      for (let i = 0; i < 20; i++) {
        const next = makeRecord({ ...current, name: `name ${i}`, version: current.version + 1, updatedAt: current.updatedAt + 1 })
        expect(await store.update(next, current.version)).toBe('updated')
        expect(await store.getForVerify('rich')).toEqual(await store.get('rich'))
        current = next
      }
      expect(unexpected(errors)).toEqual([])
    } finally {
      await drop(store.table)
    }
  })

  it(`a revoke through one KeyManager reaches verify on another, reading the replica through a cache, within cache ttl + maxReplicaLag`, async () => {
    const table = `kwr_${uniqueSuffix()}`
    const writerStore = new PostgresStore({ pool: db(), table })
    const { store: readerStore, counts, errors } = replicaStore({ table })
    const ttlMs = 1_000
    const negativeTtlMs = 200
    try {
      await writerStore.migrate()
      const writer = manager(writerStore)
      const reader = manager(readerStore, { ttl: ttlMs, negativeTtl: negativeTtlMs })
      await untilReplicaAnswers(readerStore, counts)

      // A key created elsewhere: "unknown" at most negativeTtl + maxReplicaLag.
      const createdAt = Date.now()
      const { key, token } = await writer.create({ name: 'elsewhere', environment: 'live' })
      await seenWithin(negativeTtlMs + MAX_LAG_MS, createdAt, () => reader.verify(token), (result) => result.valid)

      await writer.revoke(key.id)
      const revokedAt = Date.now()
      const outcome = await seenWithin(ttlMs + MAX_LAG_MS, revokedAt, () => reader.verify(token), (result) => !result.valid)
      expect(outcome).toMatchObject({ valid: false, reason: 'revoked' })
      expect(unexpected(errors)).toEqual([])
      await reader.close()
    } finally {
      await drop(table)
    }
  })

  it('the lag guard: with replay paused, verify turns to the primary within maxReplicaLag of a change, and back to the replica once replay resumes', async () => {
    const table = `kwr_${uniqueSuffix()}`
    const writerStore = new PostgresStore({ pool: db(), table })
    const { store: readerStore, counts, errors } = replicaStore({ table })
    try {
      await writerStore.migrate()
      const writer = manager(writerStore)
      const reader = manager(readerStore)
      const { key, token } = await writer.create({ name: 'lagging', environment: 'live' })
      await until(
        async () => {
          const before = counts.reads
          return (await reader.verify(token)).valid && counts.reads > before
        },
        5_000,
        'the key answered by the replica',
      )

      await pauseReplay()
      try {
        await writer.revoke(key.id)
        const revokedAt = Date.now()
        // Without a cache the bound is maxReplicaLag: the guard sees the replica fall behind.
        const outcome = await seenWithin(MAX_LAG_MS, revokedAt, () => reader.verify(token), (result) => !result.valid)
        expect(outcome).toMatchObject({ valid: false, reason: 'revoked' })
        // The replica still holds the key unrevoked: the primary answered.
        expect(await revokedOnReplica(table, key.id)).toBeNull()
        const readsWhilePaused = counts.reads
        for (let i = 0; i < 5; i++) expect(await reader.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })
        expect(counts.reads).toBe(readsWhilePaused)
      } finally {
        await resumeReplay()
      }

      await until(async () => (await revokedOnReplica(table, key.id)) !== null, 5_000, 'the replica to replay the revoke')
      await until(
        async () => {
          const before = counts.reads
          expect(await reader.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })
          return counts.reads > before
        },
        5_000,
        'verify back on the replica',
      )
      expect(unexpected(errors)).toEqual([])
    } finally {
      await resumeReplay()
      await drop(table)
    }
  })

  it('with an invalidation channel, a changed key is read from the primary next, even while the replica lags far behind', async () => {
    const table = `kwr_${uniqueSuffix()}`
    const channelName = `kwr_${uniqueSuffix()}`
    const writerStore = new PostgresStore({ pool: db(), table })
    // A bound far longer than the test: only the channel can explain a fresh answer.
    const { store: readerStore, counts, errors } = replicaStore({ table, maxReplicaLag: '1m', replicaCheckInterval: CHECK_MS })
    const writer = manager(writerStore, { ttl: '1m', channel: new PostgresInvalidationChannel({ pool: db(), channel: channelName }) })
    const reader = manager(readerStore, { ttl: '1m', channel: new PostgresInvalidationChannel({ pool: db(), channel: channelName }) })
    try {
      await writerStore.migrate()
      const { key, token } = await writer.create({ name: 'announced', environment: 'live' })
      await untilReplicaAnswers(readerStore, counts)
      await until(async () => (await reader.verify(token)).valid, 5_000, 'the reader to know the key')
      await until(async () => (await revokedOnReplica(table, key.id)) === null, 5_000, 'the replica to have the key')

      await pauseReplay()
      try {
        await writer.revoke(key.id)
        await until(async () => !(await reader.verify(token)).valid, 5_000, 'the channel to reach the reader')
        expect(await reader.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })
        expect(await revokedOnReplica(table, key.id)).toBeNull()
      } finally {
        await resumeReplay()
      }
      expect(unexpected(errors)).toEqual([])
    } finally {
      await Promise.all([writer.close(), reader.close()])
      await resumeReplay()
      await drop(table)
    }
  })

  it('a replica that goes down: verify falls back to the primary without an error, and returns to the replica when it is back', async () => {
    const { host, port, ...login } = replicaConnection()
    const proxy = await TcpProxy.start({ host, port })
    const viaProxy = new pg.Pool({ ...login, host: '127.0.0.1', port: proxy.port, max: 4, connectionTimeoutMillis: 1_000, query_timeout: 2_000 })
    viaProxy.on('error', () => undefined)
    const { store, counts, errors } = replicaStore({ readPool: viaProxy })
    try {
      await store.migrate()
      const keys = manager(store)
      const { token } = await keys.create({ name: 'survivor', environment: 'live' })
      await until(async () => {
        const before = counts.reads
        return (await keys.verify(token)).valid && counts.reads > before
      }, 5_000, 'the key answered by the replica')

      proxy.cut()
      for (let i = 0; i < 20; i++) expect(await keys.verify(token)).toMatchObject({ valid: true })
      await until(() => unexpected(errors).length > 0, 5_000, 'the replica failure to be reported')
      expect(unexpected(errors)[0]).toBeInstanceOf(StoreError)
      // Told once per run of failures, not at every check.
      for (let i = 0; i < 5; i++) expect(await keys.verify(token)).toMatchObject({ valid: true })
      expect(unexpected(errors)).toHaveLength(1)

      await proxy.restore()
      await until(async () => {
        const before = counts.reads
        return (await keys.verify(token)).valid && counts.reads > before
      }, 10_000, 'verify back on the replica')
    } finally {
      await store.close()
      await viaProxy.end()
      await proxy.close()
      await drop(store.table)
    }
  })

  it('a readPool on a server that is no standby is never read: verify uses the primary and the store says why', async () => {
    const notAReplica = new pg.Pool({ ...SERVICES.postgres, max: 2 })
    const { store, counts, errors } = replicaStore({ readPool: notAReplica })
    try {
      await store.migrate()
      const keys = manager(store)
      const { token } = await keys.create({ name: 'primary only', environment: 'live' })
      await until(async () => (await keys.verify(token)).valid && errors.length > 0, 5_000, 'the store to report the readPool')
      for (let i = 0; i < 5; i++) expect(await keys.verify(token)).toMatchObject({ valid: true })
      expect(counts.reads).toBe(0)
      expect(String((errors[0] as StoreError).cause)).toMatch(/not connected to a standby/)
    } finally {
      await store.close()
      await notAReplica.end()
      await drop(store.table)
    }
  })
})

/** The replica's address and login as separate fields (from PG_REPLICA, a URL or fields), to put a proxy in between. */
function replicaConnection(): { host: string; port: number; user?: string; password?: string; database?: string } {
  if (PG_REPLICA.connectionString === undefined) {
    return { host: PG_REPLICA.host!, port: PG_REPLICA.port!, user: PG_REPLICA.user!, database: PG_REPLICA.database! }
  }
  const url = new URL(PG_REPLICA.connectionString)
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    ...(url.username === '' ? {} : { user: decodeURIComponent(url.username) }),
    ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
    ...(url.pathname.length > 1 ? { database: decodeURIComponent(url.pathname.slice(1)) } : {}),
  }
}

describe('PostgresStore read replica options and lag guard (no server needed)', () => {
  /** Pool stand-ins: the primary at WAL position `primaryLsn`, the standby having replayed `replayed`. */
  function fakePools() {
    const state = { primaryLsn: '0/100', replayed: '0/100' as string | null, recovery: true, replicaDown: false }
    const sent: { pool: 'primary' | 'replica'; text: string }[] = []
    const row = makeRecord({ id: 'k1' })
    const answer = (text: string) => {
      if (text.includes('pg_current_wal_lsn')) return { rows: [{ lsn: state.primaryLsn }], rowCount: 1 }
      if (text.includes('pg_last_wal_replay_lsn')) return { rows: [{ recovery: state.recovery, replayed: state.replayed }], rowCount: 1 }
      return { rows: [], rowCount: 0 }
    }
    const pool = (name: 'primary' | 'replica'): PgPool => {
      const query = async (text: string) => {
        sent.push({ pool: name, text })
        if (name === 'replica' && state.replicaDown) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
        return answer(text)
      }
      return { query, totalCount: 0, connect: async () => ({ query, release: () => undefined }) }
    }
    return { state, sent, row, primary: pool('primary'), replica: pool('replica') }
  }

  const reads = (sent: { pool: string; text: string }[], pool: string) => sent.filter((entry) => entry.pool === pool && entry.text.includes('WHERE id = $1')).length

  afterEach(() => {
    vi.useRealTimers()
  })

  it('checks every replica option and names the field', () => {
    const { primary, replica } = fakePools()
    const client = new pg.Client()
    for (const readPool of [{}, 'postgres://replica', 42, null, { query: async () => ({ rows: [], rowCount: 0 }) }, client]) {
      expectConfigError(() => new PostgresStore({ pool: primary, readPool: readPool as never }), 'readPool')
    }
    expectConfigError(() => new PostgresStore({ pool: primary, readPool: primary }), 'readPool')
    for (const maxReplicaLag of [0, -1, 1.5e10, Number.NaN, 'soon', '', null, {}]) {
      expectConfigError(() => new PostgresStore({ pool: primary, readPool: replica, maxReplicaLag: maxReplicaLag as never }), 'maxReplicaLag')
    }
    for (const replicaCheckInterval of [0, 'often', 1_000, '2s']) {
      expectConfigError(() => new PostgresStore({ pool: primary, readPool: replica, replicaCheckInterval: replicaCheckInterval as never }), 'replicaCheckInterval')
    }
    expectConfigError(() => new PostgresStore({ pool: primary, readPool: replica, onReplicaError: 'log' as never }), 'onReplicaError')
    expectConfigError(() => new PostgresStore({ pool: primary, maxReplicaLag: '1s' }), 'maxReplicaLag')
    expectConfigError(() => new PostgresStore({ pool: primary, onReplicaError: () => undefined }), 'onReplicaError')
    expect(() => new PostgresStore({ pool: primary, readPool: replica, maxReplicaLag: '2s', replicaCheckInterval: '1s' })).not.toThrow()
    // Without an interval, a short bound gets a quarter of itself.
    expect(() => new PostgresStore({ pool: primary, readPool: replica, maxReplicaLag: 100 })).not.toThrow()
  })

  it('does no I/O until the first verify read, reads the primary until a check shows the replica caught up, and stops at close()', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    const { state, sent, primary, replica } = fakePools()
    const store = new PostgresStore({ pool: primary, readPool: replica, maxReplicaLag: 1_000, replicaCheckInterval: 100, onReplicaError: () => undefined })
    expect(sent).toEqual([])

    // Nothing known yet: the primary answers, and the first check starts.
    await store.getForVerify('k1')
    expect([reads(sent, 'primary'), reads(sent, 'replica')]).toEqual([1, 0])
    await vi.advanceTimersByTimeAsync(0)
    await store.getForVerify('k1')
    expect([reads(sent, 'primary'), reads(sent, 'replica')]).toEqual([1, 1])

    // The primary moves on and the replica stops replaying: usable for maxReplicaLag after the last
    // position it was seen to have, then not.
    state.primaryLsn = '0/200'
    await vi.advanceTimersByTimeAsync(900)
    await store.getForVerify('k1')
    expect(reads(sent, 'replica')).toBe(2)
    await vi.advanceTimersByTimeAsync(200)
    await store.getForVerify('k1')
    expect([reads(sent, 'primary'), reads(sent, 'replica')]).toEqual([2, 2])

    // Caught up again (an idle primary: same position on both), usable again.
    state.replayed = '0/200'
    await vi.advanceTimersByTimeAsync(100)
    await store.getForVerify('k1')
    expect(reads(sent, 'replica')).toBe(3)

    // A key this store writes is read on the primary until a later check covers the write.
    await store.update(makeRecord({ id: 'k1', version: 2 }), 1)
    await store.getForVerify('k1')
    expect(reads(sent, 'replica')).toBe(3)
    await store.getForVerify('other')
    expect(reads(sent, 'replica')).toBe(4)
    await vi.advanceTimersByTimeAsync(100)
    await store.getForVerify('k1')
    expect(reads(sent, 'replica')).toBe(5)

    // changed: true reads the primary, and keeps this key there until the replica catches up.
    state.primaryLsn = '0/300'
    const primaryReads = reads(sent, 'primary')
    await store.getForVerify('k1', { changed: true })
    await store.getForVerify('k1')
    expect(reads(sent, 'primary')).toBe(primaryReads + 2)
    state.replayed = '0/300'
    await vi.advanceTimersByTimeAsync(100)
    await store.getForVerify('k1')
    expect(reads(sent, 'replica')).toBe(6)

    // A standby read that fails falls back to the primary; the guard waits for the next good check.
    state.replicaDown = true
    expect(await store.getForVerify('k1')).toBeNull()
    expect(reads(sent, 'primary')).toBe(primaryReads + 3)
    state.replicaDown = false
    await store.getForVerify('k1')
    expect(reads(sent, 'primary')).toBe(primaryReads + 4)
    await vi.advanceTimersByTimeAsync(100)
    await store.getForVerify('k1')
    expect(reads(sent, 'replica')).toBe(8)

    // After close(), no check runs again, and verify reads the primary.
    await store.close()
    const after = sent.length
    await vi.advanceTimersByTimeAsync(10_000)
    expect(sent.length).toBe(after)
    await store.getForVerify('k1')
    expect(sent.at(-1)?.pool).toBe('primary')
  })

  it('without a readPool, getForVerify is get', async () => {
    const { sent, primary } = fakePools()
    const store = new PostgresStore({ pool: primary })
    expect(await store.getForVerify('k1')).toBeNull()
    expect(await store.getForVerify('k1', { changed: true })).toBeNull()
    expect(sent.map((entry) => entry.pool)).toEqual(['primary', 'primary'])
  })

  it('parses WAL positions', () => {
    expect(parseLsn('0/0')).toBe(0n)
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n)
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe(2n ** 64n - 1n)
    for (const text of [null, undefined, '', '16', '16/', 'G/1', '1/2/3', 42]) expect(parseLsn(text)).toBeNull()
  })
})

describe('KeyManager verify reads through getForVerify (no server needed)', () => {
  /** A memory store with a verify read of its own that records how it was called. */
  class VerifyReadStore extends MemoryStore {
    readonly verifyReads: { id: string; changed: boolean }[] = []
    gets = 0
    override async get(id: string): Promise<StoredKey | null> {
      this.gets++
      return super.get(id)
    }
    async getForVerify(id: string, options?: { readonly changed?: boolean }): Promise<StoredKey | null> {
      this.verifyReads.push({ id, changed: options?.changed === true })
      return super.get(id)
    }
  }

  it('verify reads with getForVerify, management with get; a key changed here is read with changed: true next, once', async () => {
    const store = new VerifyReadStore()
    const { keys } = setup({ store })
    const { key, token } = await keys.create({ name: 'a', environment: 'live' })
    const getsAfterCreate = store.gets
    expect((await keys.verify(token)).valid).toBe(true)
    expect((await keys.verify(token)).valid).toBe(true)
    expect(store.gets).toBe(getsAfterCreate)
    expect(store.verifyReads).toEqual([
      { id: key.id, changed: true },
      { id: key.id, changed: false },
    ])

    await keys.revoke(key.id)
    expect(store.gets).toBeGreaterThan(getsAfterCreate)
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })
    expect(store.verifyReads.at(-1)).toEqual({ id: key.id, changed: true })
  })

  it("another instance's change, heard on the channel, makes the next read say changed: true", async () => {
    const store = new VerifyReadStore()
    const channel = new LocalInvalidationChannel()
    const a = setup({ store, cache: { ttl: '1h', channel } }).keys
    const b = setup({ store, cache: { ttl: '1h', channel } }).keys
    const { key, token } = await a.create({ name: 'shared', environment: 'live' })
    expect((await b.verify(token)).valid).toBe(true)
    await a.revoke(key.id)
    await until(async () => !(await b.verify(token)).valid, 2_000, 'b to hear of the revoke')
    expect(store.verifyReads.at(-1)).toEqual({ id: key.id, changed: true })
    await Promise.all([a.close(), b.close()])
  })
})
