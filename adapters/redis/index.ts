/**
 * The Redis key store, which also keeps rate counters and credit balances (`UsageStore`) and the audit
 * trail (`AuditStore`, each entry written by the script of its change):
 * `import { RedisStore } from 'keywarden/adapters/redis'`. Bring your own client
 * (ioredis or node-redis, standalone or Cluster, or a `sendCommand` function); no Redis driver is a
 * dependency of keywarden.
 * A namespace written by keywarden 0.1.0 needs `await store.migrate()` once, for quotas per tenant.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { KeyManager } from 'keywarden'
 * import { RedisInvalidationChannel, RedisStore } from 'keywarden/adapters/redis'
 *
 * const client = new Redis()
 * const keys = new KeyManager({
 *   store: new RedisStore({ client }),
 *   cache: { ttl: '30s', channel: new RedisInvalidationChannel({ client }) }, // optional: pub/sub invalidation
 * })
 * ```
 *
 * @module keywarden/adapters/redis
 */
export { RedisStore, type RedisStoreOptions } from './redis-store.js'
export { ReplicationNotConfirmedError, type RedisDurability } from './durability.js'
export type { IoredisLikeClient, NodeRedisClusterLike, NodeRedisLikeClient, RedisClientLike, SendCommand } from './client.js'
export {
  RedisInvalidationChannel,
  DEFAULT_REDIS_INVALIDATION_CHANNEL,
  type RedisInvalidationChannelOptions,
  type RedisPubSubClientLike,
  type IoredisPubSubLike,
  type NodeRedisPubSubLike,
  type RedisSubscriberLossEvent,
} from './invalidation-channel.js'
