/**
 * Peer comparison: verify throughput of better-auth's API-key plugin (`@better-auth/api-key`) next to
 * keywarden's, on the same kind of store with the same number of keys, measured in the same run one
 * right after the other: a valid key, one call at a time (concurrency 1, one process, one core),
 * each call verifying the next key of a stride through all of them (the same order for both).
 *
 * Each store gives two rows: better-auth (the baseline, ratio `null`) then keywarden, whose ratio is
 * keywarden ops/s / better-auth ops/s. Stores: better-auth's memory adapter vs keywarden's
 * MemoryStore; PostgreSQL (`pg` Pool through better-auth's built-in Kysely adapter) vs PostgresStore;
 * SQLite (better-sqlite3 through the same Kysely adapter) vs SqliteStore.
 *
 * better-auth is configured with its defaults except:
 * - the plugin's per-key rate limiting is off (`rateLimit: { enabled: false }`): its default is 10
 *   requests per key per day, so a benchmark would measure rejections after the 10th call;
 * - the global HTTP rate limiter and telemetry are off (neither is on the `auth.api` path, but they
 *   must not make the run flaky or phone home);
 * - email-and-password sign-up is on, only to create the one user owning the keys.
 *
 * NOT disabled, on purpose: better-auth records usage on every successful verify (it writes
 * `lastRequest`, then `updatedAt`, to the key's row: two UPDATEs per verify on SQL; `deferUpdates` is
 * off by default). That is part of what is compared: keywarden records `lastUsedAt` write-behind
 * (buffered, at most once a minute per key), so its verify is a read only. Keys are hashed by both:
 * better-auth with plain SHA-256, keywarden here with HMAC-SHA-256 under a pepper (as in the other
 * benchmarks and as its docs recommend).
 *
 * Limited mode (`limited: true`, the `limits` rows): the same comparison with usage limits on both
 * sides, at each given concurrency. better-auth: its per-key rate limit on (`rateLimit: { enabled:
 * true, timeWindow: 1 day, maxRequests: 10^9 }`, its one fixed window per key, counted in the key's
 * row) and a `remaining` count of 10^9 per key (its credits: a guarded decrement of the same row);
 * each verify is then one read and three guarded writes of the key's row on SQL (decrement
 * `remaining`, count the request, write `updatedAt`).
 * keywarden: two rate rules (token bucket + daily fixed window) and a per-key credit balance of 10^12
 * (bench/limits-policy.ts), counters in the key store. Nothing is refused (every answer is checked).
 *
 * Clean-up: PostgreSQL tables of both libraries live in a dedicated schema (through the pool's
 * `search_path`), dropped with CASCADE at the end; SQLite files live in a temp directory, deleted.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { apiKey } from '@better-auth/api-key'
import Database from 'better-sqlite3'
import { betterAuth, type BetterAuthOptions } from 'better-auth'
import { memoryAdapter } from 'better-auth/adapters/memory'
import { getMigrations } from 'better-auth/db/migration'
import pg from 'pg'
import { KeyManager, type KeyStore } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { PostgresStore, SqliteStore } from 'keywarden/adapters/sql'
import { forEachConcurrently, interleave, measure, ROUNDS, type BenchResult } from './harness.js'
import { expectAccepted, limitsFor } from './limits-policy.js'

export type PeerStore = 'memory' | 'postgres' | 'sqlite'

/** One kind of store, set up for both libraries. */
interface PeerSubject {
  /** Shown in the row names. */
  readonly label: string
  /** What better-auth is given as `database`. */
  readonly betterAuthDatabase: BetterAuthOptions['database']
  /** Whether better-auth's schema must be created with its migrator (the SQL stores). */
  readonly migrate: boolean
  /** keywarden's store, migrated. */
  readonly keywardenStore: () => Promise<KeyStore>
  /** Drops every table and file created; ends connections. */
  readonly cleanup: () => Promise<void>
}

const SECRET = 'bench-better-auth-secret-0123456789abcdef' // fixed test value, 32+ characters
const PEPPER = 'bench-pepper-0123456789abcdef'
const KEYWARDEN_TABLE = `bench_peer_keys_${process.pid}`
const CREATE_CONCURRENCY = 20
/** better-auth's limits in limited mode: out of reach, so nothing is refused (see the header). */
const BETTER_AUTH_RATE_LIMIT = { enabled: true, timeWindow: 86_400_000, maxRequests: 1e9 }
const BETTER_AUTH_REMAINING = 1e9

function memorySubject(): PeerSubject {
  // better-auth's memory adapter needs every model's array to exist before the first lookup.
  const db: Record<string, unknown[]> = { user: [], session: [], account: [], verification: [], apikey: [] }
  return {
    label: 'memory',
    betterAuthDatabase: memoryAdapter(db),
    migrate: false,
    keywardenStore: async () => new MemoryStore(),
    cleanup: async () => undefined,
  }
}

async function postgresSubject(): Promise<PeerSubject> {
  const schema = `bench_better_auth_${process.pid}`
  // Every connection of this pool resolves unqualified names in the dedicated schema: better-auth's
  // `user`, `session`, `account`, `verification`, `apikey` and keywarden's table all land there.
  const pool = new pg.Pool({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test', max: 20, options: `-c search_path=${schema}` })
  try {
    await pool.query(`CREATE SCHEMA ${schema}`)
  } catch (error) {
    await pool.end()
    throw error
  }
  return {
    label: 'PostgreSQL',
    betterAuthDatabase: pool,
    migrate: true,
    keywardenStore: async () => {
      const store = new PostgresStore({ pool, table: KEYWARDEN_TABLE })
      await store.migrate()
      return store
    },
    cleanup: async () => {
      try {
        await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      } finally {
        await pool.end()
      }
    },
  }
}

async function sqliteSubject(): Promise<PeerSubject> {
  const directory = mkdtempSync(join(tmpdir(), 'keywarden-peer-bench-'))
  // One file per library; both in WAL mode (as in bench/verify-stores.ts), other pragmas default.
  const betterAuthDb = new Database(join(directory, 'better-auth.db'))
  betterAuthDb.pragma('journal_mode = WAL')
  const keywardenDb = new Database(join(directory, 'keywarden.db'))
  keywardenDb.pragma('journal_mode = WAL')
  return {
    label: 'SQLite',
    betterAuthDatabase: betterAuthDb,
    migrate: true,
    keywardenStore: async () => {
      const store = new SqliteStore({ database: keywardenDb, table: KEYWARDEN_TABLE })
      await store.migrate()
      return store
    },
    cleanup: async () => {
      betterAuthDb.close()
      keywardenDb.close()
      rmSync(directory, { recursive: true, force: true })
    },
  }
}

const SUBJECTS: Record<PeerStore, () => PeerSubject | Promise<PeerSubject>> = { memory: memorySubject, postgres: postgresSubject, sqlite: sqliteSubject }

function betterAuthOptions(database: BetterAuthOptions['database'], limited: boolean) {
  return {
    secret: SECRET,
    baseURL: 'http://localhost:3000',
    database,
    emailAndPassword: { enabled: true }, // only to create the user that owns the keys
    telemetry: { enabled: false },
    rateLimit: { enabled: false }, // the HTTP endpoint rate limiter (not on the auth.api path anyway)
    // Per-key rate limiting off (default: 10 requests per key per day). Everything else default,
    // including usage recording on verify (lastRequest / updatedAt written on every call).
    // Limited mode: per-key rate limiting on, with a limit out of reach.
    plugins: [apiKey({ rateLimit: limited ? BETTER_AUTH_RATE_LIMIT : { enabled: false } })],
  } satisfies BetterAuthOptions
}

/** A stride through all `count` indexes (7919 is prime), the same sequence for both libraries. */
function strideOrder(count: number): number[] {
  const order: number[] = []
  let cursor = 0
  for (let i = 0; i < count; i++) order.push((cursor = (cursor + 7919) % count))
  return order
}

/** A prepared contender: one verify of the next key in stride order, and its teardown. */
interface Contender {
  readonly verifyNext: () => Promise<void>
  readonly close: () => Promise<void>
}

async function prepareBetterAuth(subject: PeerSubject, keyCount: number, limited: boolean): Promise<Contender> {
  const options = betterAuthOptions(subject.betterAuthDatabase, limited)
  if (subject.migrate) await (await getMigrations(options)).runMigrations()
  const auth = betterAuth(options)
  const { user } = await auth.api.signUpEmail({ body: { email: 'bench@example.com', password: 'bench-password-0123', name: 'bench' } })
  const tokens: string[] = []
  await forEachConcurrently(Array.from({ length: keyCount }, (_, i) => i), CREATE_CONCURRENCY, async (i) => {
    const body = { userId: user.id, name: `k${i}`, ...(limited ? { remaining: BETTER_AUTH_REMAINING } : {}) }
    tokens.push((await auth.api.createApiKey({ body })).key)
  })
  const verify = async (key: string) => {
    const result = await auth.api.verifyApiKey({ body: { key } })
    if (!result.valid) throw new Error(`better-auth rejected a valid key: ${JSON.stringify(result.error)}`)
  }
  // Warm: every key verified once before timing (as for keywarden), so first-use writes are done.
  await forEachConcurrently(tokens, CREATE_CONCURRENCY, verify)
  const order = strideOrder(keyCount)
  let next = 0
  return { verifyNext: () => verify(tokens[order[next++ % keyCount]!]!), close: async () => {} }
}

async function prepareKeywarden(subject: PeerSubject, keyCount: number, limited: boolean): Promise<Contender> {
  const keys = new KeyManager({ store: await subject.keywardenStore(), prefix: 'bench', pepper: PEPPER, ...(limited ? { limits: limitsFor('metered') } : {}) })
  const tokens: string[] = []
  await forEachConcurrently(Array.from({ length: keyCount }, (_, i) => i), CREATE_CONCURRENCY, async (i) => {
    tokens.push((await keys.create({ name: `k${i}`, environment: 'live' })).token)
  })
  const verify = async (token: string) => expectAccepted(await keys.verify(token), limited)
  await forEachConcurrently(tokens, CREATE_CONCURRENCY, verify)
  const order = strideOrder(keyCount)
  let next = 0
  // close() flushes buffered lastUsedAt writes and stops the flush timer.
  return { verifyNext: () => verify(tokens[order[next++ % keyCount]!]!), close: () => keys.close() }
}

/**
 * Measures better-auth's API-key verify and keywarden's in interleaved rounds, on each of `stores`, with
 * `keyCounts.memory` keys on the memory stores and `keyCounts.sql` keys on PostgreSQL and SQLite.
 * A store that cannot be set up (e.g. PostgreSQL not running) is skipped with a warning. `limited`:
 * both with usage limits (see the header), measured at each of `concurrencies` (default: 1 only).
 */
export async function benchBetterAuth(
  durationMs: number,
  keyCounts: { memory: number; sql: number },
  stores: readonly PeerStore[],
  { limited = false, concurrencies = [1] }: { limited?: boolean; concurrencies?: readonly number[] } = {},
): Promise<BenchResult[]> {
  const results: BenchResult[] = []
  for (const store of stores) {
    const keyCount = store === 'memory' ? keyCounts.memory : keyCounts.sql
    let subject: PeerSubject
    try {
      subject = await SUBJECTS[store]()
    } catch (error) {
      console.warn(`[bench] better-auth peer on ${store} skipped: ${error instanceof Error ? error.message : String(error)}`)
      continue
    }
    const contenders: Contender[] = []
    try {
      contenders.push(await prepareBetterAuth(subject, keyCount, limited), await prepareKeywarden(subject, keyCount, limited))
      const slice = durationMs / ROUNDS
      for (const concurrency of limited ? concurrencies : [1]) {
        const comparison = await interleave(contenders.map((contender) => () => measure(contender.verifyNext, slice, concurrency)))
        const where = `${subject.label}, ${keyCount} keys${limited ? `, c=${concurrency}` : ''}`
        const [theirs, ours] = limited
          ? [`better-auth api-key: verify, rate limit + remaining (${where})`, `keywarden: verify + 2 rate rules + credits (${where})`]
          : [`better-auth api-key: verify valid (${where})`, `keywarden: verify valid (${where})`]
        results.push(
          { name: theirs, opsPerSecond: comparison.opsPerSecond(0), ratioToBaseline: null },
          { name: ours, opsPerSecond: comparison.opsPerSecond(1), ratioToBaseline: comparison.ratio(1) },
        )
      }
    } finally {
      await Promise.all(contenders.map((contender) => contender.close()))
      await subject.cleanup()
    }
  }
  return results
}
