/**
 * Verify throughput on each real store, with a warm store of N keys, next to the same driver's plain
 * single-key read (Redis GET, a primary-key SELECT), at concurrency 1 (one request at a time, one core)
 * and 50. "Warm": every key was verified once before timing, so the once-a-minute lastUsedAt write is
 * not inside the timed window.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Cluster, Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { KeyManager, type KeyStore } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { RedisStore } from 'keywarden/adapters/redis'
import { MySqlStore, PostgresStore, SqliteStore } from 'keywarden/adapters/sql'
import { forEachConcurrently, interleave, measure, ROUNDS, type BenchResult } from './harness.js'

export interface StoreUnderTest {
  readonly name: string
  readonly store: KeyStore
  /** The same driver reading one row or value by key, without keywarden. */
  readonly plainRead: (id: string) => Promise<unknown>
  readonly cleanup: () => Promise<void>
}

const TABLE = `bench_keys_${process.pid}`
const PEPPER = 'bench-pepper-0123456789abcdef'

/**
 * Deletes every key of `namespace` that `node` holds, found with SCAN, through `owner` (the node
 * itself, or the Cluster client that routes each key to its master).
 */
async function dropNamespace(node: Redis, namespace: string, owner: Redis | Cluster = node): Promise<void> {
  let cursor = '0'
  do {
    const [next, found] = await node.scan(cursor, 'MATCH', `*${namespace}*`, 'COUNT', 1000)
    if (found.length > 0) await owner.del(...found)
    cursor = next
  } while (cursor !== '0')
}

/** ioredis on the standalone server, with or without its auto-pipelining (same client for both reads). */
async function ioredisStore(enableAutoPipelining: boolean): Promise<StoreUnderTest> {
  const client = new Redis({ host: '127.0.0.1', port: 6379, enableAutoPipelining })
  const namespace = `bench${process.pid}${enableAutoPipelining ? 'ap' : ''}`
  await client.set(`${namespace}:plain`, 'x'.repeat(600))
  return {
    name: enableAutoPipelining ? 'Redis (ioredis, auto-pipelining)' : 'Redis (ioredis)',
    store: new RedisStore({ client, namespace }),
    plainRead: () => client.get(`${namespace}:plain`),
    cleanup: async () => {
      await dropNamespace(client, namespace)
      client.disconnect()
    },
  }
}

/** node-redis on the standalone server (it pipelines the commands of one tick by itself). */
async function nodeRedisStore(): Promise<StoreUnderTest> {
  const { createClient } = await import('redis')
  const client = await createClient({ url: 'redis://127.0.0.1:6379' }).connect()
  const namespace = `bench${process.pid}nr`
  await client.set(`${namespace}:plain`, 'x'.repeat(600))
  return {
    name: 'Redis (node-redis)',
    store: new RedisStore({ client, namespace }),
    plainRead: () => client.get(`${namespace}:plain`),
    cleanup: async () => {
      const admin = new Redis({ host: '127.0.0.1', port: 6379 })
      await dropNamespace(admin, namespace)
      admin.disconnect()
      await client.quit()
    },
  }
}

/** The local test cluster (scripts/ci/start-redis-cluster.sh): the namespace's slot is on one master. */
async function redisClusterStore(): Promise<StoreUnderTest> {
  const nodes = (process.env.KEYWARDEN_REDIS_CLUSTER_NODES ?? '127.0.0.1:7000').split(',').map((node) => {
    const [host, port] = node.trim().split(':')
    return { host: host!, port: Number(port) }
  })
  const client = new Cluster(nodes, { enableAutoPipelining: false, clusterRetryStrategy: () => null })
  const namespace = `bench${process.pid}`
  await client.set(`{${namespace}}:plain`, 'x'.repeat(600))
  return {
    name: 'Redis Cluster (ioredis Cluster)',
    store: new RedisStore({ client, namespace }),
    plainRead: () => client.get(`{${namespace}}:plain`),
    cleanup: async () => {
      for (const node of client.nodes('master')) await dropNamespace(node, namespace, client)
      client.disconnect()
    },
  }
}

async function postgresStore(): Promise<StoreUnderTest> {
  const pool = new pg.Pool({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test', max: 20 })
  const store = new PostgresStore({ pool, table: TABLE })
  await store.migrate()
  return {
    name: 'PostgreSQL (pg)',
    store,
    plainRead: (id) => pool.query(`SELECT * FROM ${TABLE} WHERE id = $1`, [id]),
    cleanup: async () => {
      await pool.query(`DROP TABLE IF EXISTS ${TABLE}_usage`)
      await pool.query(`DROP FUNCTION IF EXISTS ${TABLE}_consume`)
      await pool.query(`DROP TABLE IF EXISTS ${TABLE}`)
      await pool.end()
    },
  }
}

async function mariadbStore(): Promise<StoreUnderTest> {
  const pool = mysql.createPool({ host: '127.0.0.1', port: 3306, user: 'root', database: 'test', connectionLimit: 20 })
  const store = new MySqlStore({ pool, table: TABLE })
  await store.migrate()
  return {
    name: 'MariaDB (mysql2)',
    store,
    plainRead: (id) => pool.query(`SELECT * FROM ${TABLE} WHERE id = ?`, [id]),
    cleanup: async () => {
      await pool.query(`DROP TABLE IF EXISTS ${TABLE}_usage`)
      await pool.query(`DROP TABLE IF EXISTS ${TABLE}`)
      await pool.query(`DROP TABLE IF EXISTS ${TABLE}_locks`).catch(() => undefined)
      await pool.end()
    },
  }
}

async function sqliteStore(): Promise<StoreUnderTest> {
  const directory = mkdtempSync(join(tmpdir(), 'keywarden-bench-'))
  const database = new Database(join(directory, 'keys.db'))
  database.pragma('journal_mode = WAL')
  const store = new SqliteStore({ database, table: TABLE })
  await store.migrate()
  const select = database.prepare(`SELECT * FROM ${TABLE} WHERE id = ?`)
  return {
    name: 'SQLite (better-sqlite3)',
    store,
    plainRead: async (id) => select.get(id),
    cleanup: async () => {
      database.close()
      rmSync(directory, { recursive: true, force: true })
    },
  }
}

export const STORE_FACTORIES = {
  redis: () => ioredisStore(false),
  'redis-autopipelining': () => ioredisStore(true),
  'redis-node-redis': nodeRedisStore,
  'redis-cluster': redisClusterStore,
  postgres: postgresStore,
  mariadb: mariadbStore,
  sqlite: sqliteStore,
}

/** The factories that vary the Redis client, not the store: verify rows only (limit rows compare stores). */
export const CLIENT_VARIANTS: ReadonlySet<string> = new Set(['redis-autopipelining', 'redis-node-redis'])

export async function benchVerifyStore(
  factory: () => Promise<StoreUnderTest>,
  keyCount: number,
  durationMs: number,
  concurrencies: readonly number[],
): Promise<BenchResult[]> {
  const subject = await factory()
  const keys = new KeyManager({ store: subject.store, prefix: 'bench', pepper: PEPPER })
  // The cache-warm case: a second KeyManager on the same store with the verify cache holding every key,
  // compared with the memory store's verify (the goal is ≥ 50% of it) in the same rounds.
  const cachedKeys = new KeyManager({ store: subject.store, prefix: 'bench', pepper: PEPPER, cache: { maxEntries: keyCount * 2, ttl: '1h' } })
  const memoryKeys = new KeyManager({ store: new MemoryStore(), prefix: 'bench', pepper: PEPPER })
  try {
    const tokens: string[] = []
    const memoryTokens: string[] = []
    await forEachConcurrently(Array.from({ length: keyCount }, (_, i) => i), 20, async (i) => {
      tokens.push((await keys.create({ name: `k${i}`, environment: 'live' })).token)
      memoryTokens.push((await memoryKeys.create({ name: `k${i}`, environment: 'live' })).token)
    })
    await forEachConcurrently(tokens, 20, async (token) => {
      if (!(await keys.verify(token)).valid || !(await cachedKeys.verify(token)).valid) throw new Error('bench setup is wrong')
    })
    const ids = tokens.map((token) => keys.parseToken(token)!.keyId)
    let cursor = 0
    const nextIndex = () => (cursor = (cursor + 7919) % keyCount) // a stride through every key

    const results: BenchResult[] = []
    for (const concurrency of concurrencies) {
      const slice = durationMs / ROUNDS
      const comparison = await interleave([
        () => measure(() => subject.plainRead(ids[nextIndex()]!), slice, concurrency),
        () => measure(() => keys.verify(tokens[nextIndex()]!), slice, concurrency),
        () => measure(() => memoryKeys.verify(memoryTokens[nextIndex()]!), slice, concurrency),
        () => measure(() => cachedKeys.verify(tokens[nextIndex()]!), slice, concurrency),
      ])
      results.push(
        { name: `${subject.name}: plain read, c=${concurrency}`, opsPerSecond: comparison.opsPerSecond(0), ratioToBaseline: null },
        { name: `${subject.name}: verify valid, c=${concurrency}`, opsPerSecond: comparison.opsPerSecond(1), ratioToBaseline: comparison.ratio(1) },
        { name: `${subject.name}: (memory store verify, same rounds), c=${concurrency}`, opsPerSecond: comparison.opsPerSecond(2), ratioToBaseline: null },
        { name: `${subject.name}: verify valid, cache warm, c=${concurrency}`, opsPerSecond: comparison.opsPerSecond(3), ratioToBaseline: comparison.ratio(3, 2) },
      )
    }
    return results
  } finally {
    // Write the buffered lastUsedAt values while the store is still open, then drop it.
    await Promise.all([keys.close(), cachedKeys.close(), memoryKeys.close()])
    await subject.cleanup()
  }
}
