/**
 * Gates for suites that need a real server (Redis, PostgreSQL, MariaDB). Locally, a missing server skips
 * its suites with a visible message; with CI=true a missing server fails the run, never a silent skip.
 * Every gate that opens prints the server version it runs against.
 */
import type { Redis } from 'ioredis'

/** Whether a server answered, and what it said its version is. */
export interface ServiceGate {
  readonly available: boolean
  readonly version: string | null
}

/** Where the test servers listen; override with environment variables. */
export const SERVICES = {
  redis: { host: process.env.REDIS_HOST ?? '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379) },
  postgres: {
    host: process.env.PGHOST ?? '127.0.0.1',
    port: Number(process.env.PGPORT ?? 5432),
    user: process.env.PGUSER ?? 'postgres',
    database: process.env.PGDATABASE ?? 'test',
  },
  mariadb: {
    host: process.env.MYSQL_HOST ?? '127.0.0.1',
    port: Number(process.env.MYSQL_PORT ?? 3306),
    user: process.env.MYSQL_USER ?? 'root',
    password: process.env.MYSQL_PASSWORD ?? '',
    database: process.env.MYSQL_DATABASE ?? 'test',
  },
} as const

function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describeError(error.errors[0])
  return error instanceof Error ? error.message || error.name : String(error)
}

/**
 * Runs `probe` (which connects and returns the server's version). Use the result with
 * `describe.skipIf(!gate.available)`.
 *
 * @example
 * ```ts
 * const gate = await gateService('Redis', async () => { ... return info.redis_version })
 * describe.skipIf(!gate.available)('redis store', () => { ... })
 * ```
 */
export async function gateService(name: string, probe: () => Promise<string>, timeoutMs = 5_000): Promise<ServiceGate> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const version = await Promise.race([
      probe(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
    console.log(`[services] ${name} suites run against ${version}`)
    return { available: true, version }
  } catch (error) {
    const message = `[services] ${name} is not reachable (${describeError(error)})`
    if (process.env.CI) throw new Error(`${message}; with CI=true every server-backed suite must run`)
    console.warn(`${message}: its suites are SKIPPED`)
    return { available: false, version: null }
  } finally {
    clearTimeout(timer)
  }
}

/** A short random suffix for per-test database objects (tables, namespaces), so suites never collide. */
export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
}

/** Deletes every key of a RedisStore's `namespace` (its keys are `{namespace}:…`), found with SCAN. */
export async function deleteRedisNamespace(client: Redis, namespace: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', `{${namespace}}:*`, 'COUNT', 1000)
    if (found.length > 0) await client.del(...found)
    cursor = next
  } while (cursor !== '0')
}
