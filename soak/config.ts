/**
 * What every soak process shares: the key configuration (so the app servers and the orchestrator's own
 * KeyManager agree on prefix, pepper and scopes), the timing constants the assertions rest on, and the
 * environment variables.
 */
import { parseDuration } from 'keywarden'

/** A run kind: a store on a private server (`redis-cluster`: a private Redis Cluster of 3 masters + 3 replicas). */
export type StoreName = 'redis' | 'postgres' | 'redis-cluster'
/** Every run kind, in the order of the default SOAK_STORES. */
export const STORE_NAMES: readonly StoreName[] = ['redis', 'postgres', 'redis-cluster']

/** App instance names: the first two for a single-server store, all three on the cluster. */
export const INSTANCE_NAMES = ['A', 'B', 'C'] as const
/** How many app instances share the store in a run of `store`. */
export function instanceCount(store: StoreName): number {
  return store === 'redis-cluster' ? 3 : 2
}

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

/** The verify cache of every app instance, and the documented revocation bound that follows from it. */
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
/**
 * The goal for revocation propagation with a working invalidation channel: from the revoke (or
 * disable) call returning on one instance to the first rejection on each other instance. A probe over
 * it is a violation, as is any acceptance after the bound.
 */
export const PROPAGATION_GOAL_MS = 1_000

/** How the cluster run fails the namespace's master over: `kill` (SIGKILL of the master) or `manual` (`CLUSTER FAILOVER` on its replica). */
export type FailoverMode = 'kill' | 'manual'
export const FAILOVER_MODES: readonly FailoverMode[] = ['kill', 'manual']
/** The six ports of the cluster run's private Redis Cluster (and each port + 10000 for the cluster bus). */
export const DEFAULT_CLUSTER_PORTS: readonly number[] = [7200, 7201, 7202, 7203, 7204, 7205]

export interface SoakSettings {
  readonly durationMs: number
  readonly stores: readonly StoreName[]
  readonly concurrency: number
  /** Verify requests per second across all instances; 0 for as fast as `concurrency` allows. */
  readonly rate: number
  /** The cluster run's six node ports. */
  readonly clusterPorts: readonly number[]
  readonly failover: FailoverMode
}

function fail(message: string): never {
  console.error(`soak: ${message}`)
  process.exit(2)
}

/** `7200-7205`, `7200,7201,...` or `7200 7201 ...` as a list of ports. */
function parsePorts(text: string): number[] {
  const ports: number[] = []
  for (const part of text.split(/[\s,]+/).filter(Boolean)) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part)
    if (match === null) return []
    for (let port = Number(match[1]); port <= Number(match[2] ?? match[1]); port++) ports.push(port)
  }
  return ports
}

/**
 * Reads SOAK_DURATION (default 5m, per store), SOAK_STORES, SOAK_CONCURRENCY (20), SOAK_RATE (500/s),
 * SOAK_CLUSTER_PORTS (7200-7205) and SOAK_FAILOVER (kill).
 */
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
  const clusterPorts = env.SOAK_CLUSTER_PORTS === undefined ? [...DEFAULT_CLUSTER_PORTS] : parsePorts(env.SOAK_CLUSTER_PORTS)
  const validPort = (port: number) => Number.isInteger(port) && port >= 1024 && port + 10_000 <= 65_535
  if (clusterPorts.length !== 6 || new Set(clusterPorts).size !== 6 || !clusterPorts.every(validPort)) {
    fail(`SOAK_CLUSTER_PORTS must name six distinct ports from 1024 to 55535 (each port + 10000 is its cluster bus), such as 7200-7205, not ${env.SOAK_CLUSTER_PORTS}`)
  }
  const failover = (env.SOAK_FAILOVER ?? 'kill') as FailoverMode
  if (!FAILOVER_MODES.includes(failover)) fail(`SOAK_FAILOVER must be one of ${FAILOVER_MODES.join(', ')}, not ${env.SOAK_FAILOVER}`)
  return { durationMs, stores: stores as StoreName[], concurrency, rate, clusterPorts, failover }
}

/** How an app server reaches its store; passed to it as JSON in SOAK_APP. */
export interface AppConfig {
  readonly instance: string
  readonly store: StoreName
  /** The server (redis, postgres), or the first seed node (redis-cluster). */
  readonly host: string
  readonly port: number
  /** redis-cluster: every node, as seeds for the ioredis `Cluster`. */
  readonly nodes?: readonly { readonly host: string; readonly port: number }[]
}

/** The Redis namespace and PostgreSQL table of the soak (on private servers, so no other run shares them). */
export const REDIS_NAMESPACE = 'soak'
export const POSTGRES_TABLE = 'soak_keys'
export const POSTGRES_DATABASE = 'postgres'
export const POSTGRES_USER = 'postgres'
