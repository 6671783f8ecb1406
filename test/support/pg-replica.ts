/**
 * The PostgreSQL read replica for test/adapters/postgres-replica.test.ts: a streaming standby of the
 * test primary (SERVICES.postgres), by default on 127.0.0.1:5433 as `bash scripts/ci/start-pg-replica.sh`
 * makes it; `KEYWARDEN_PG_REPLICA_URL` (a connection string) points elsewhere. Gated like every server
 * (services.ts): locally a missing replica skips its suite with a visible message, under CI=true it
 * fails the run.
 *
 * @example
 * ```ts
 * const gate = await pgReplicaGate()
 * describe.skipIf(!gate.available)('PostgresStore with a read replica', () => { ... })
 * ```
 */
import pg from 'pg'
import { gateService, SERVICES, type ServiceGate } from './services.js'

/** How to reach the replica: the `pg` config (user and database as the primary's) or a URL. */
export const PG_REPLICA: pg.PoolConfig =
  process.env.KEYWARDEN_PG_REPLICA_URL !== undefined && process.env.KEYWARDEN_PG_REPLICA_URL !== ''
    ? { connectionString: process.env.KEYWARDEN_PG_REPLICA_URL }
    : { host: '127.0.0.1', port: 5433, user: SERVICES.postgres.user, database: SERVICES.postgres.database }

const START_HINT = 'start one with `bash scripts/ci/start-pg-replica.sh`, or set KEYWARDEN_PG_REPLICA_URL'

async function systemIdentifier(client: pg.Client): Promise<string> {
  return (await client.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')).rows[0]!.id
}

let gate: Promise<ServiceGate> | undefined

/**
 * Probes the replica once per process: it must answer, be in recovery (a hot standby), stream WAL, and
 * be a copy of the test primary (the same system identifier).
 */
export function pgReplicaGate(): Promise<ServiceGate> {
  return (gate ??= gateService('PostgreSQL read replica', async () => {
    const replica = new pg.Client({ ...PG_REPLICA, connectionTimeoutMillis: 3_000 })
    const primary = new pg.Client({ ...SERVICES.postgres, connectionTimeoutMillis: 3_000 })
    try {
      await replica.connect().catch((error: unknown) => {
        throw new Error(`${error instanceof Error ? error.message : String(error)}; ${START_HINT}`)
      })
      const { rows } = await replica.query<{ recovery: boolean; version: string; streaming: string }>(
        "SELECT pg_is_in_recovery() AS recovery, current_setting('server_version') AS version, (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming')::text AS streaming",
      )
      const row = rows[0]!
      if (!row.recovery) throw new Error(`the server is not in recovery, so no standby; ${START_HINT}`)
      if (row.streaming !== '1') throw new Error(`the standby does not stream from a primary; ${START_HINT}`)
      await primary.connect()
      if ((await systemIdentifier(replica)) !== (await systemIdentifier(primary))) {
        throw new Error(`the standby is not a copy of the test primary (${SERVICES.postgres.host}:${SERVICES.postgres.port}); ${START_HINT}`)
      }
      return `PostgreSQL ${row.version} (hot standby of ${SERVICES.postgres.host}:${SERVICES.postgres.port}, streaming)`
    } finally {
      await Promise.all([replica.end().catch(() => undefined), primary.end().catch(() => undefined)])
    }
  }))
}
