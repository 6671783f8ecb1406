/**
 * The client seam. The store speaks to Redis through one function, `send(args)`, built here from
 * whatever the caller passes in. No Redis driver is imported: the shapes below are structural, so any
 * ioredis or node-redis version with these methods fits, and so does a hand-written function.
 */
import { ConfigError } from '../../src/errors.js'

/**
 * Sends one Redis command (`['HGET', key, field]`) and resolves with its reply: strings for bulk
 * replies, numbers for integers, arrays for multi-bulk, `null` for nil. The style of rate-limit-redis.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { RedisStore, type SendCommand } from 'keywarden/adapters/redis'
 *
 * const ioredis = new Redis()
 * const sendCommand: SendCommand = (args) => ioredis.call(args[0]!, ...args.slice(1))
 * const store = new RedisStore({ client: sendCommand })
 * ```
 */
export type SendCommand = (args: string[]) => Promise<unknown>

/**
 * An ioredis `Redis` or `Cluster` (any version with `call`). Cluster routes each script by its first
 * key, and every key of a namespace shares one hash tag.
 *
 * @example
 * ```ts
 * import { Cluster } from 'ioredis'
 * import { RedisStore } from 'keywarden/adapters/redis'
 *
 * const store = new RedisStore({ client: new Cluster([{ host: 'redis-1', port: 6379 }]) })
 * ```
 */
export interface IoredisLikeClient {
  /** Sends one command by name, e.g. `call('HGET', key, field)`, resolving with its reply. */
  call(command: string, ...args: string[]): Promise<unknown>
}

/**
 * A node-redis v4 or later client from `createClient()`, connected by the caller.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * import { RedisStore } from 'keywarden/adapters/redis'
 *
 * const store = new RedisStore({ client: await createClient({ url: process.env.REDIS_URL }).connect() })
 * ```
 */
export interface NodeRedisLikeClient {
  /** Sends one command as an argument list, e.g. `['HGET', key, field]`, resolving with its reply. */
  sendCommand(args: string[]): Promise<unknown>
}

/**
 * What {@link RedisStoreOptions.client} accepts: one of the shapes above, told apart at construction.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { createClient } from 'redis'
 * import { RedisStore, type RedisClientLike } from 'keywarden/adapters/redis'
 *
 * const client: RedisClientLike = process.env.USE_IOREDIS ? new Redis() : await createClient().connect()
 * const store = new RedisStore({ client })
 * ```
 */
export type RedisClientLike = IoredisLikeClient | NodeRedisLikeClient | SendCommand

const EXPECTED =
  'must be an ioredis Redis or Cluster, a node-redis client from createClient(), or a function (args: string[]) => Promise<unknown>'

/**
 * The `send` function for `client`. Detection is structural: ioredis has `call(command, ...args)`;
 * node-redis has `sendCommand(args)` (ioredis also has a `sendCommand`, taking a Command object, so
 * `call` is checked first). A node-redis cluster's `sendCommand(firstKey, isReadonly, args)` is refused
 * with a hint: wrap it in a function that passes the namespace's hash tag as `firstKey`.
 *
 * @throws {@link ConfigError} naming `client` when it is none of these.
 */
export function toSendCommand(client: unknown): SendCommand {
  if (typeof client === 'function') {
    const send = client as SendCommand
    return (args) => send(args)
  }
  if (typeof client === 'object' && client !== null) {
    const candidate = client as Partial<Record<'call' | 'sendCommand', unknown>>
    if (typeof candidate.call === 'function') {
      const ioredis = client as IoredisLikeClient
      return ([command, ...args]) => ioredis.call(command!, ...args)
    }
    if (typeof candidate.sendCommand === 'function') {
      if (candidate.sendCommand.length >= 3) {
        throw new ConfigError([
          {
            path: ['client'],
            message: "is a node-redis cluster: pass (args) => cluster.sendCommand('{namespace}', false, args) instead",
          },
        ])
      }
      const nodeRedis = client as NodeRedisLikeClient
      return (args) => nodeRedis.sendCommand(args)
    }
  }
  throw new ConfigError([{ path: ['client'], message: EXPECTED }])
}
