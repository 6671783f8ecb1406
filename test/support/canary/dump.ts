/**
 * Raw copies of what a store holds, for the leak canary, taken from the outside: the memory store's maps
 * as they are, every row of a SQL table (`SELECT *`, binary columns as text and hex), every Redis key of
 * a namespace with its value. The server-backed dumps open a connection of their own (from
 * test/support/services.ts) and close it again, so a test's own pool is neither needed nor disturbed.
 */
import { inspect } from 'node:util'
import { MemoryStore } from '../../../adapters/memory/index.js'
import { RedisStore } from '../../../adapters/redis/index.js'
import { MySqlStore, PostgresStore, SqliteStore } from '../../../adapters/sql/index.js'
import { isAuditStore, type KeyStore } from '../../../src/index.js'
import { SERVICES } from '../services.js'
import { currentWhere, recordStorageDump } from './index.js'
import { record, sinkOpen } from './sink.js'

function rowsAsText(rows: unknown): string {
  return JSON.stringify(rows, (_key, value: unknown) => {
    if (Buffer.isBuffer(value)) return `${value.toString('utf8')} ${value.toString('hex')}`
    // JSON.stringify turns Buffers into { type: 'Buffer', data: [...] } before the replacer sees them.
    if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
      const bytes = Buffer.from((value as { data: number[] }).data)
      return `${bytes.toString('utf8')} ${bytes.toString('hex')}`
    }
    return typeof value === 'bigint' ? value.toString() : value
  })
}

async function dumpPostgres(table: string): Promise<string> {
  const { default: pg } = await import('pg')
  const client = new pg.Client(SERVICES.postgres)
  await client.connect()
  try {
    const usage = await client.query(`SELECT * FROM "${table}_usage"`).catch(() => ({ rows: [] }))
    const audit = await client.query(`SELECT * FROM "${table}_audit"`).catch(() => ({ rows: [] }))
    return `${rowsAsText((await client.query(`SELECT * FROM "${table}"`)).rows)}\n${table}_usage: ${rowsAsText(usage.rows)}\n${table}_audit: ${rowsAsText(audit.rows)}`
  } finally {
    await client.end()
  }
}

async function dumpMySql(table: string): Promise<string> {
  const { default: mysql } = await import('mysql2/promise')
  const connection = await mysql.createConnection(SERVICES.mariadb)
  try {
    const parts: string[] = []
    for (const name of [table, `${table}_locks`, `${table}_usage`, `${table}_audit`]) {
      const [rows] = await connection.query(`SELECT * FROM \`${name}\``).catch(() => [[]])
      parts.push(`${name}: ${rowsAsText(rows)}`)
    }
    return parts.join('\n')
  } finally {
    await connection.end()
  }
}

async function dumpRedis(namespace: string): Promise<string> {
  const { Redis } = await import('ioredis')
  const client = new Redis({ ...SERVICES.redis, lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    const lines: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `*${namespace}*`, 'COUNT', 1000)
      cursor = next
      for (const key of batch) {
        const type = await client.type(key)
        const value =
          type === 'hash'
            ? await client.hgetall(key)
            : type === 'zset'
              ? await client.zrange(key, '0', '-1', 'WITHSCORES')
              : type === 'set'
                ? await client.smembers(key)
                : type === 'list'
                  ? await client.lrange(key, 0, -1)
                  : type === 'string'
                    ? await client.get(key)
                    : `(${type})`
        lines.push(`${key} ${JSON.stringify(value)}`)
      }
    } while (cursor !== '0')
    return lines.join('\n')
  } finally {
    client.disconnect()
  }
}

/** Everything `store` holds, as raw as the backend allows; `null` for a store that cannot be read. */
/** Every audit entry an audit store holds, for stores whose raw tables the dump cannot reach. */
async function auditDump(store: KeyStore): Promise<string> {
  if (!isAuditStore(store)) return ''
  return `\naudit: ${rowsAsText(await store.listAudit({ limit: 1_000_000 }))}`
}

export async function rawDump(store: KeyStore): Promise<string | null> {
  // The memory store keeps its maps in private fields: its list() returns every record, whole.
  if (store instanceof MemoryStore) {
    const records = inspect(await store.list({ now: Date.now(), order: 'asc', limit: 1_000_000 }), { depth: Infinity, maxArrayLength: Infinity, maxStringLength: Infinity, breakLength: Infinity })
    return records + (await auditDump(store))
  }
  if (store instanceof PostgresStore) return dumpPostgres(store.table)
  if (store instanceof MySqlStore) return dumpMySql(store.table)
  if (store instanceof RedisStore) return dumpRedis(store.namespace)
  // SQLite's database handle is private to the store; its list() reads every column of every row.
  if (store instanceof SqliteStore || typeof store.list === 'function') {
    return rowsAsText(await store.list({ now: Date.now(), order: 'asc', limit: 1_000_000 })) + (await auditDump(store))
  }
  return null
}

/**
 * Dumps `store` into the canary's corpus. Never throws: a store whose table a test already dropped, or
 * whose server is down, is simply not dumped (and noted, so the summary shows it).
 */
export async function recordStoreDump(store: KeyStore, detail: string): Promise<void> {
  if (!sinkOpen()) return
  try {
    const text = await rawDump(store)
    if (text !== null) recordStorageDump(text, `${store.constructor?.name ?? 'store'}: ${detail}`)
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    record('note', currentWhere(), `${store.constructor?.name ?? 'store'}: ${detail}: not dumped (${reason})`, '')
  }
}
