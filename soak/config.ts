/**
 * What every soak process shares: the key configuration (so the app servers and the orchestrator's own
 * KeyManager agree on prefix, pepper and scopes), the timing constants the assertions rest on, and the
 * environment variables.
 */
import { parseDuration } from 'keywarden'

export type StoreName = 'redis' | 'postgres'
export const STORE_NAMES: readonly StoreName[] = ['redis', 'postgres']

export const PREFIX = 'soak'
export const ENVIRONMENT = 'live'
export const PEPPER = 'soak-pepper-0123456789abcdef0123456789abcdef'
/** The scope the guarded route requires; a key without it is answered 403. */
export const REQUIRED_SCOPE = 'data:read'
/** Scope sets that `update` switches between: the first two pass the route, the last one does not. */
export const SCOPE_SETS: readonly (readonly string[])[] = [[REQUIRED_SCOPE], [REQUIRED_SCOPE, 'reports:write'], ['billing:read']]
export const OWNERS = ['owner-1', 'owner-2', 'owner-3', 'owner-4', 'owner-5'] as const
/** Finite, so every create with an owner takes the store's quota-insert path (a transaction in SQL). */
export const MAX_KEYS_PER_OWNER = 100_000

/** The verify cache of both app instances, and the documented revocation bound that follows from it. */
export const CACHE_TTL_MS = 2_000
export const CACHE_NEGATIVE_TTL_MS = 500
/** Slack on top of the ttl for scheduling and I/O (a read that started before a change, answered after it). */
export const BOUND_MARGIN_MS = 250
export const REVOCATION_BOUND_MS = CACHE_TTL_MS + BOUND_MARGIN_MS
/** The middleware's `timeout`: short, so an outage turns into 503s quickly. */
export const VERIFY_TIMEOUT_MS = 2_000
/** A 503 is expected for a request sent up to this long after both instances answered a store read again. */
export const RECOVERY_SLACK_MS = 500
/** How long the store stays down during its restart. */
export const OUTAGE_MS = 4_000

export interface SoakSettings {
  readonly durationMs: number
  readonly stores: readonly StoreName[]
  readonly concurrency: number
  /** Verify requests per second across both instances; 0 for as fast as `concurrency` allows. */
  readonly rate: number
}

function fail(message: string): never {
  console.error(`soak: ${message}`)
  process.exit(2)
}

/** Reads SOAK_DURATION (default 5m, per store), SOAK_STORES, SOAK_CONCURRENCY (20) and SOAK_RATE (500/s). */
export function readSettings(env: NodeJS.ProcessEnv = process.env): SoakSettings {
  const durationMs = parseDuration(env.SOAK_DURATION ?? '5m')
  if (durationMs === undefined || durationMs < 20_000) fail(`SOAK_DURATION must be a duration of at least 20s such as 60s or 5m, not ${env.SOAK_DURATION}`)
  const stores = (env.SOAK_STORES ?? STORE_NAMES.join(','))
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean)
  for (const name of stores) if (!STORE_NAMES.includes(name as StoreName)) fail(`SOAK_STORES: unknown store ${name} (known: ${STORE_NAMES.join(', ')})`)
  if (stores.length === 0) fail('SOAK_STORES names no store')
  const concurrency = Number(env.SOAK_CONCURRENCY ?? 20)
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 500) fail('SOAK_CONCURRENCY must be an integer from 1 to 500')
  const rate = Number(env.SOAK_RATE ?? 500)
  if (!Number.isFinite(rate) || rate < 0) fail('SOAK_RATE must be a non-negative number (0: unlimited)')
  return { durationMs, stores: stores as StoreName[], concurrency, rate }
}

/** How an app server reaches its store; passed to it as JSON in SOAK_APP. */
export interface AppConfig {
  readonly instance: string
  readonly store: StoreName
  readonly host: string
  readonly port: number
}

/** The Redis namespace and PostgreSQL table of the soak (on private servers, so no other run shares them). */
export const REDIS_NAMESPACE = 'soak'
export const POSTGRES_TABLE = 'soak_keys'
export const POSTGRES_DATABASE = 'postgres'
export const POSTGRES_USER = 'postgres'
