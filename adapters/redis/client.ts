/**
 * The client seam. The store speaks to Redis through one function, `send(args)`, built here from
 * whatever the caller passes in, and sends a management write with its `WAIT` through a second one,
 * `sendAndWait`, which keeps the pair on one connection to the namespace's master (durability.ts). No
 * Redis driver is imported: the shapes below are structural, so any ioredis or node-redis version with
 * these methods fits (clusters of both included), and so does a hand-written function.
 */
import { ConfigError } from '../../src/errors.js'
import { directSendAndWait, ioredisClusterSendAndWait, nodeRedisClusterSendAndWait, type IoredisRouting, type NodeRedisPoolLike, type SendAndWait } from './write-routing.js'

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
 * A node-redis v4 or later cluster from `createCluster()`, connected by the caller. The store sends
 * every command with `sendCommand(firstKey, isReadonly, args)`, `firstKey` being the namespace's hash
 * tag `{namespace}` (every key of a namespace hashes to that one slot) and `isReadonly` `false`, so
 * each command and script goes to the primary of the shard owning the namespace, never to a replica.
 *
 * @example
 * ```ts
 * import { createCluster } from 'redis'
 * import { RedisStore } from 'keywarden/adapters/redis'
 *
 * const cluster = await createCluster({ rootNodes: [{ url: 'redis://redis-1:6379' }] }).connect()
 * const store = new RedisStore({ client: cluster, namespace: 'billing-api' })
 * ```
 */
export interface NodeRedisClusterLike {
  /**
   * Sends one command as an argument list to the node serving `firstKey`'s slot (a primary unless
   * `isReadonly`), following MOVED and ASK redirections, resolving with its reply.
   */
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>
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
export type RedisClientLike = IoredisLikeClient | NodeRedisLikeClient | NodeRedisClusterLike | SendCommand

const EXPECTED =
  'must be an ioredis Redis or Cluster, a node-redis client from createClient() or cluster from createCluster(), or a function (args: string[]) => Promise<unknown>'

/**
 * Whether `client` is a node-redis cluster: its `sendCommand` takes `(firstKey, isReadonly, args)`
 * where a client's takes `(args)`; node-redis v4 to v6 clusters also have `getSlotMaster(slot)`.
 */
export function isNodeRedisCluster(client: Partial<Record<'sendCommand' | 'getSlotMaster', unknown>>): boolean {
  return typeof client.sendCommand === 'function' && (client.sendCommand.length >= 3 || typeof client.getSlotMaster === 'function')
}

/** Which shape {@link toClientSeam} recognised: it decides the default durability and how `WAIT` is routed. */
export type ClientKind = 'ioredis' | 'ioredis-cluster' | 'node-redis' | 'node-redis-cluster' | 'function'

/** Everything the store sends through: one command at a time, or a write followed by `WAIT`. */
export interface ClientSeam {
  readonly kind: ClientKind
  readonly send: SendCommand
  readonly sendAndWait: SendAndWait
}

/**
 * The seam for `client`. Detection is structural: ioredis (`Redis` or `Cluster`, told apart by
 * `isCluster`) has `call(command, ...args)`; a node-redis cluster has `sendCommand(firstKey, isReadonly,
 * args)`, and is sent every command with `firstKey` = `hashTag` (the namespace's `{namespace}`, so it
 * reaches the shard owning the namespace) and `isReadonly` = `false` (the primary); a node-redis client
 * has `sendCommand(args)` (ioredis also has a `sendCommand`, taking a Command object, so `call` is
 * checked first). A `sendCommand` function gets the write and its WAIT back to back, and cannot be
 * told where to send them: that is right only when it sends every command on one connection.
 *
 * @throws {@link ConfigError} naming `client` when it is none of these.
 */
export function toClientSeam(client: unknown, hashTag: string): ClientSeam {
  if (typeof client === 'function') {
    const given = client as SendCommand
    const send: SendCommand = (args) => given(args)
    return { kind: 'function', send, sendAndWait: directSendAndWait(send) }
  }
  if (typeof client === 'object' && client !== null) {
    const candidate = client as Partial<Record<'call' | 'sendCommand' | 'getSlotMaster' | 'execute' | 'pipeline' | 'nodes' | 'isCluster', unknown>>
    if (typeof candidate.call === 'function') {
      const ioredis = client as IoredisLikeClient
      const send: SendCommand = ([command, ...args]) => ioredis.call(command!, ...args)
      const cluster = candidate.isCluster === true && typeof candidate.pipeline === 'function' && typeof candidate.nodes === 'function'
      return cluster
        ? { kind: 'ioredis-cluster', send, sendAndWait: ioredisClusterSendAndWait(client as IoredisRouting) }
        : { kind: 'ioredis', send, sendAndWait: directSendAndWait(send) }
    }
    if (isNodeRedisCluster(candidate)) {
      const cluster = client as NodeRedisClusterLike
      const send: SendCommand = (args) => cluster.sendCommand(hashTag, false, args)
      return { kind: 'node-redis-cluster', send, sendAndWait: nodeRedisClusterSendAndWait(cluster, hashTag) }
    }
    if (typeof candidate.sendCommand === 'function') {
      const nodeRedis = client as NodeRedisLikeClient
      const send: SendCommand = (args) => nodeRedis.sendCommand(args)
      // A pool hands each command to any of its clients: the pair must share one.
      const sendAndWait: SendAndWait =
        typeof candidate.execute === 'function'
          ? (args, waitArgs) => (client as NodeRedisPoolLike).execute((pooled) => directSendAndWait((command) => pooled.sendCommand(command))(args, waitArgs))
          : directSendAndWait(send)
      return { kind: 'node-redis', send, sendAndWait }
    }
  }
  throw new ConfigError([{ path: ['client'], message: EXPECTED }])
}

/**
 * The `send` function for `client` (see {@link toClientSeam}).
 *
 * @throws {@link ConfigError} naming `client` when it is none of the accepted shapes.
 */
export function toSendCommand(client: unknown, hashTag: string): SendCommand {
  return toClientSeam(client, hashTag).send
}
