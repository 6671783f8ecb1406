/**
 * One app instance of the soak, in a process of its own: `SOAK_APP='<AppConfig JSON>' node --import tsx
 * soak/app-server.ts`. An Express app whose `GET /data` is guarded by `apiKeyAuth` (scope data:read),
 * on a KeyManager with the verify cache and the store's invalidation channel, as an app would run it.
 * On `redis-cluster` the store and the channel share one ioredis `Cluster` client (sharded pub/sub on
 * the namespace's shard, so the channel's subscriber sits on the master the soak fails over).
 *
 * `POST /admin/op` runs one management call through this instance's KeyManager (the soak's management
 * traffic) and answers the server's clock just before and after it, so the orchestrator knows when a
 * revoke returned. `GET /admin/stats` reports heap and counters (`?gc=1` collects garbage first when
 * node runs with --expose-gc). No authentication on /admin: it listens on 127.0.0.1 for the soak only.
 *
 * Prints `READY <port>`; on SIGTERM closes the KeyManager (flushing lastUsedAt), its clients, and exits 0.
 */
import type { AddressInfo } from 'node:net'
import express from 'express'
import { Cluster, Redis } from 'ioredis'
import pg from 'pg'
import { KeyManager, KeywardenError, type KeyStore, type InvalidationChannel } from 'keywarden'
import { RedisInvalidationChannel, RedisStore } from 'keywarden/adapters/redis'
import { PostgresInvalidationChannel, PostgresStore } from 'keywarden/adapters/sql'
import { apiKeyAuth, type Rejection } from 'keywarden/express'
import {
  CACHE_NEGATIVE_TTL_MS,
  CACHE_TTL_MS,
  ENVIRONMENT,
  MAX_KEYS_PER_OWNER,
  PEPPER,
  POSTGRES_DATABASE,
  POSTGRES_TABLE,
  POSTGRES_USER,
  PREFIX,
  REDIS_NAMESPACE,
  REQUIRED_SCOPE,
  VERIFY_TIMEOUT_MS,
  type AppConfig,
} from './config.js'

const config = JSON.parse(process.env.SOAK_APP ?? 'null') as AppConfig | null
if (config === null) {
  console.error('app-server.ts needs SOAK_APP (see soak/run.ts)')
  process.exit(2)
}

/** Counts of what went wrong where, by message, so an outage does not flood the log. */
const counters = {
  rejections: {} as Record<string, number>,
  clientErrors: 0,
  channelErrors: 0,
  usageErrors: 0,
  listenerErrors: 0,
  internalErrors: 0,
  /** The invalidation subscription as the channel reported it: lost (cache bypassed) and restored. */
  subscription: { lost: 0, restored: 0, lostMs: 0, longestLostMs: 0, lostSince: null as number | null },
  lastErrors: [] as string[],
}
function noteError(kind: 'clientErrors' | 'channelErrors' | 'usageErrors' | 'listenerErrors' | 'internalErrors') {
  return (error: unknown) => {
    counters[kind]++
    const text = `${kind}: ${error instanceof Error ? error.message : String(error)}`
    if (counters.lastErrors.at(-1) !== text) counters.lastErrors.push(text)
    if (counters.lastErrors.length > 20) counters.lastErrors.shift()
  }
}

interface Backend {
  readonly store: KeyStore
  readonly channel: InvalidationChannel
  readonly close: () => Promise<void>
}

function redisBackend({ host, port }: AppConfig): Backend {
  // ioredis defaults: offline queue on, reconnect with backoff, 20 retries per request.
  const client = new Redis({ host, port })
  client.on('error', noteError('clientErrors'))
  return {
    store: new RedisStore({ client, namespace: REDIS_NAMESPACE }),
    channel: new RedisInvalidationChannel({ client, onError: noteError('channelErrors') }),
    close: async () => void (await client.quit()),
  }
}

function redisClusterBackend({ nodes }: AppConfig): Backend {
  // ioredis defaults otherwise: reads on the masters (scaleReads 'master', as docs/stores/redis.md asks),
  // offline queue on, slots refreshed on MOVED and on a node's loss.
  const client = new Cluster(nodes!.map(({ host, port }) => ({ host, port })), { scaleReads: 'master' })
  client.on('error', noteError('clientErrors'))
  client.on('node error', noteError('clientErrors'))
  return {
    store: new RedisStore({ client, namespace: REDIS_NAMESPACE }),
    channel: new RedisInvalidationChannel({ client, namespace: REDIS_NAMESPACE, onError: noteError('channelErrors') }),
    close: async () => void (await client.quit()),
  }
}

function postgresBackend({ host, port }: AppConfig): Backend {
  const pool = new pg.Pool({ host, port, user: POSTGRES_USER, database: POSTGRES_DATABASE, max: 10, connectionTimeoutMillis: 2_000 })
  // pg's documented duty: an idle client's error (e.g. the server restarting) is emitted on the pool.
  pool.on('error', noteError('clientErrors'))
  return {
    store: new PostgresStore({ pool, table: POSTGRES_TABLE }),
    channel: new PostgresInvalidationChannel({ pool, onError: noteError('channelErrors') }),
    close: () => pool.end(),
  }
}

/** The channel as it is, counting what it tells the KeyManager about its subscription. */
function counted(channel: InvalidationChannel): InvalidationChannel {
  const state = counters.subscription
  return {
    publish: (keyId) => channel.publish(keyId),
    subscribe: (listener, events) =>
      channel.subscribe(listener, {
        onLost: (cause) => {
          if (state.lostSince === null) {
            state.lost++
            state.lostSince = Date.now()
          }
          events?.onLost?.(cause)
        },
        onRestored: () => {
          if (state.lostSince !== null) {
            const lostMs = Date.now() - state.lostSince
            state.restored++
            state.lostMs += lostMs
            state.longestLostMs = Math.max(state.longestLostMs, lostMs)
            state.lostSince = null
          }
          events?.onRestored?.()
        },
      }),
  }
}

const backends = { redis: redisBackend, 'redis-cluster': redisClusterBackend, postgres: postgresBackend }
const backend = backends[config.store](config)
const keys = new KeyManager({
  store: backend.store,
  prefix: PREFIX,
  environments: [ENVIRONMENT],
  pepper: PEPPER,
  expiry: { default: '1h', max: '30d' },
  maxKeysPerOwner: MAX_KEYS_PER_OWNER,
  // Fine-grained last-used writes, so touches run all the time next to the management updates.
  lastUsedPrecision: '1s',
  usage: { flushInterval: '2s', onError: noteError('usageErrors') },
  cache: { ttl: CACHE_TTL_MS, negativeTtl: CACHE_NEGATIVE_TTL_MS, channel: counted(backend.channel), onError: noteError('channelErrors') },
  onListenerError: noteError('listenerErrors'),
})

const onReject = (rejection: Rejection) => {
  counters.rejections[rejection.reason] = (counters.rejections[rejection.reason] ?? 0) + 1
  if (rejection.reason === 'internal_error') noteError('internalErrors')(rejection.error)
}

/** One management call, by name; every argument comes from the orchestrator. */
type Operation =
  | { op: 'create'; input: Parameters<KeyManager['create']>[0] }
  | { op: 'revoke' | 'disable' | 'enable' | 'get'; id: string }
  | { op: 'rotate'; id: string; options: Parameters<KeyManager['rotate']>[1] }
  | { op: 'update'; id: string; patch: Parameters<KeyManager['update']>[1] }

async function runOperation(operation: Operation): Promise<{ key: unknown; token?: string }> {
  switch (operation.op) {
    case 'create':
      return keys.create(operation.input)
    case 'rotate':
      return keys.rotate(operation.id, operation.options)
    case 'update':
      return { key: await keys.update(operation.id, operation.patch) }
    case 'revoke':
    case 'disable':
    case 'enable':
      return { key: await keys[operation.op](operation.id) }
    case 'get':
      return { key: await keys.get(operation.id) }
  }
}

const app = express()
app.get('/data', apiKeyAuth(keys, { scopes: [REQUIRED_SCOPE], timeout: VERIFY_TIMEOUT_MS, onReject }), (req, res) => {
  res.json({ keyId: req.apiKey.id })
})
app.post('/admin/op', express.json(), async (req, res) => {
  const startedAt = Date.now()
  try {
    const { key, token } = await runOperation(req.body as Operation)
    const returnedAt = Date.now()
    res.json({ ok: true, key, token, startedAt, returnedAt })
  } catch (error) {
    const returnedAt = Date.now()
    const code = error instanceof KeywardenError ? error.code : 'unexpected'
    const message = error instanceof Error ? error.message : String(error)
    res.json({ ok: false, code, name: error instanceof Error ? error.name : typeof error, message, startedAt, returnedAt })
  }
})
app.get('/admin/stats', (req, res) => {
  const collected = req.query.gc === '1' && typeof globalThis.gc === 'function'
  if (collected) globalThis.gc!()
  res.json({ memory: process.memoryUsage(), collected, uptimeSeconds: process.uptime(), ...counters })
})

const server = app.listen(0, '127.0.0.1', () => console.log(`READY ${(server.address() as AddressInfo).port}`))
// Longer than any idle gap of the soak's keep-alive clients, so no request meets a socket being closed.
server.keepAliveTimeout = 120_000

let stopping = false
process.on('SIGTERM', () => {
  if (stopping) return
  stopping = true
  server.closeAllConnections()
  server.close(async () => {
    try {
      await keys.close()
      await backend.close()
      process.exit(0)
    } catch (error) {
      console.error('app-server: shutdown failed', error)
      process.exit(1)
    }
  })
})
