/**
 * The Redis key store: `import { RedisStore } from 'keywarden/adapters/redis'`. Bring your own client
 * (ioredis, node-redis, or a `sendCommand` function); no Redis driver is a dependency of keywarden.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { KeyManager } from 'keywarden'
 * import { RedisStore } from 'keywarden/adapters/redis'
 *
 * const keys = new KeyManager({ store: new RedisStore({ client: new Redis() }) })
 * ```
 *
 * @packageDocumentation
 */
export { RedisStore, type RedisStoreOptions } from './redis-store.js'
export type { IoredisLikeClient, NodeRedisLikeClient, RedisClientLike, SendCommand } from './client.js'
