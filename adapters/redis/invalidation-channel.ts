/**
 * Cache invalidation over Redis pub/sub. Like the store, no Redis driver is imported: the client is
 * recognised by its shape (ioredis has `call`; node-redis does not).
 */
import type { InvalidationChannel } from '../../src/cache.js'
import { ConfigError, type ValidationIssue } from '../../src/errors.js'
import type { Duration } from '../../src/policy/duration.js'
import { checkCommonOptions, SharedSubscription, within } from '../invalidation.js'

/**
 * What {@link RedisInvalidationChannel} uses of an ioredis `Redis` (or `Cluster`): `publish`, and for
 * the subscriber connection `duplicate`, `subscribe`, `unsubscribe`, the `message` event and `quit`.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { KeyManager } from 'keywarden'
 * import { RedisInvalidationChannel, type IoredisPubSubLike } from 'keywarden/adapters/redis'
 *
 * const client: IoredisPubSubLike = new Redis(process.env.REDIS_URL!)
 * const keys = new KeyManager({ store, cache: { ttl: '30s', channel: new RedisInvalidationChannel({ client }) } })
 * ```
 */
export interface IoredisPubSubLike {
  /** Never called here: its presence tells an ioredis client from a node-redis one. */
  call(command: string, ...args: string[]): Promise<unknown>
  /** `PUBLISH channel message`. */
  publish(channel: string, message: string): Promise<unknown>
  /** A new connection with the same options, used as the subscriber unless one is given. */
  duplicate(): IoredisPubSubLike
  /** `SUBSCRIBE`; resolves once the server confirmed. */
  subscribe(...channels: string[]): Promise<unknown>
  /** `UNSUBSCRIBE`, on a subscriber the caller owns. */
  unsubscribe(...channels: string[]): Promise<unknown>
  /** Receives the published messages. */
  on(event: 'message', listener: (channel: string, message: string) => void): unknown
  /** Receives connection errors of a subscriber the channel opened (passed to `onError`). */
  on(event: 'error', listener: (error: Error) => void): unknown
  /** Stops receiving messages when the last listener unsubscribes. */
  removeListener(event: 'message', listener: (channel: string, message: string) => void): unknown
  /** Closes a subscriber the channel opened, politely. */
  quit(): Promise<unknown>
  /** Closes a subscriber the channel opened at once (when `quit` fails or times out). */
  disconnect(): void
  /** `'wait'` (lazyConnect), `'connecting'`, `'ready'`, ...: a connection of our own is awaited until ready. */
  readonly status?: string
  /** Connects a `lazyConnect` duplicate. */
  connect?(): Promise<unknown>
  /** Waits for a duplicate to be `ready`. */
  once?(event: 'ready', listener: () => void): unknown
}

/**
 * What {@link RedisInvalidationChannel} uses of a node-redis (v4 or later) client or cluster
 * (`createClient()` or `createCluster()`): `publish`, and for the subscriber connection `duplicate`,
 * `connect`, `subscribe(channel, listener)`, `unsubscribe(channel, listener)` and `close` (v5+) or
 * `quit` (v4).
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * import { KeyManager } from 'keywarden'
 * import { RedisInvalidationChannel, type NodeRedisPubSubLike } from 'keywarden/adapters/redis'
 *
 * const client: NodeRedisPubSubLike = await createClient({ url: process.env.REDIS_URL }).connect()
 * const keys = new KeyManager({ store, cache: { ttl: '30s', channel: new RedisInvalidationChannel({ client }) } })
 * ```
 */
export interface NodeRedisPubSubLike {
  /** `PUBLISH channel message`. */
  publish(channel: string, message: string): Promise<unknown>
  /** A new, unconnected client with the same options, used as the subscriber unless one is given. */
  duplicate(): NodeRedisPubSubLike
  /** Connects the duplicate. */
  connect(): Promise<unknown>
  /** `SUBSCRIBE`, delivering messages to `listener`; resolves once the server confirmed. */
  subscribe(channel: string, listener: (message: string, channel: string) => unknown): Promise<unknown>
  /**
   * `UNSUBSCRIBE` of `listener`, on a subscriber the caller owns. The listener is typed to take
   * Buffers too, as node-redis types a cluster's `unsubscribe`; it only ever receives strings here.
   */
  unsubscribe(channel: string, listener: (message: string | Uint8Array, channel: string | Uint8Array) => unknown): Promise<unknown>
  /** Receives connection errors of a subscriber the channel opened (passed to `onError`). */
  on(event: 'error', listener: (error: Error) => void): unknown
  /** Closes a subscriber the channel opened, politely (node-redis v5). */
  close?(): Promise<unknown>
  /** Closes a subscriber the channel opened, politely (node-redis v4). */
  quit?(): Promise<unknown>
  /** Drops a subscriber the channel opened at once (node-redis v5). */
  destroy?(): unknown
  /** Drops a subscriber the channel opened at once (node-redis v4). */
  disconnect?(): Promise<unknown>
}

/**
 * A client {@link RedisInvalidationChannel} accepts: ioredis or node-redis. A `sendCommand` function
 * cannot subscribe, so it is not enough here.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { createClient } from 'redis'
 * import { RedisInvalidationChannel, type RedisPubSubClientLike } from 'keywarden/adapters/redis'
 *
 * const client: RedisPubSubClientLike = process.env.USE_IOREDIS ? new Redis() : await createClient().connect()
 * const channel = new RedisInvalidationChannel({ client })
 * ```
 */
export type RedisPubSubClientLike = IoredisPubSubLike | NodeRedisPubSubLike

/**
 * Options of {@link RedisInvalidationChannel}.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { RedisInvalidationChannel, type RedisInvalidationChannelOptions } from 'keywarden/adapters/redis'
 *
 * const options: RedisInvalidationChannelOptions = { client: redis, channel: 'billing-api:keywarden:invalidate' }
 * const channel = new RedisInvalidationChannel(options)
 * const keys = new KeyManager({ store, cache: { ttl: '30s', channel } })
 * ```
 */
export interface RedisInvalidationChannelOptions {
  /**
   * Publishes with `PUBLISH`. Unless `subscriber` is given, the channel also opens its own subscriber
   * connection with `client.duplicate()` on subscribe (same server and options) and closes it on
   * unsubscribe. The caller owns `client`: the channel never quits it.
   */
  readonly client: RedisPubSubClientLike
  /**
   * A dedicated connection for `SUBSCRIBE`, owned by the caller (node-redis: connected). The channel
   * subscribes and unsubscribes on it, never closes it, and does not listen to its `error` events.
   */
  readonly subscriber?: RedisPubSubClientLike
  /**
   * The pub/sub channel name, default `'keywarden:invalidate'`. Every instance sharing a store (and
   * namespace) must use the same name; stores on separate namespaces may share it (the cost is a
   * spurious cache miss) or use one each.
   */
  readonly channel?: string
  /** How long opening the subscriber connection and `SUBSCRIBE` may take before subscribing fails. Default `'5s'`. */
  readonly subscribeTimeout?: Duration
  /**
   * Hears errors of the subscriber connection this channel opened (the driver reconnects and
   * resubscribes by itself; invalidations published meanwhile are lost, so the cache `ttl` bounds
   * staleness). Default: `console.error`.
   */
  readonly onError?: (error: unknown) => void
}

/**
 * The pub/sub channel name used when none is given.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { DEFAULT_REDIS_INVALIDATION_CHANNEL, RedisInvalidationChannel } from 'keywarden/adapters/redis'
 *
 * const channel = new RedisInvalidationChannel({ client: redis })
 * channel.channel === DEFAULT_REDIS_INVALIDATION_CHANNEL // 'keywarden:invalidate'
 * const keys = new KeyManager({ store, cache: { ttl: '30s', channel } })
 * ```
 */
export const DEFAULT_REDIS_INVALIDATION_CHANNEL = 'keywarden:invalidate'

type Kind = 'ioredis' | 'node-redis'

function methods(value: unknown): (name: string) => boolean {
  const object = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {}
  return (name) => typeof object[name] === 'function'
}

/** Which driver `client` is, for SUBSCRIBE: ioredis has `call`, node-redis does not. */
function subscriberKind(client: unknown): Kind | undefined {
  const has = methods(client)
  if (!has('subscribe') || !has('unsubscribe') || !has('on')) return undefined
  return has('call') ? 'ioredis' : 'node-redis'
}

function defaultOnError(error: unknown): void {
  console.error('keywarden: the Redis invalidation subscriber failed; other instances\' changes reach this one within the cache ttl', error)
}

/**
 * An {@link InvalidationChannel} on Redis pub/sub, for a KeyManager `cache`: every management call
 * publishes the key ID on `channel`, and every instance subscribed to it drops its cached copy.
 * `publish` sends `PUBLISH` on `client`; the first `subscribe` opens a dedicated subscriber connection
 * (`client.duplicate()`, or your `subscriber`) shared by every listener of this object, and the last
 * unsubscribe (e.g. `keys.close()`) closes it. Driver errors propagate; the KeyManager reports them
 * through `cache.onError` and never fails a change because of them. Messages lost while the subscriber
 * is disconnected are not replayed: the cache `ttl` bounds how stale an instance can be meanwhile.
 * Works with Redis Cluster too, through an ioredis `Cluster` or a node-redis `createCluster()`:
 * `PUBLISH` on any node reaches the subscribers of every node.
 *
 * @example With ioredis
 * ```ts
 * import { Redis } from 'ioredis'
 * import { KeyManager } from 'keywarden'
 * import { RedisInvalidationChannel, RedisStore } from 'keywarden/adapters/redis'
 *
 * const client = new Redis(process.env.REDIS_URL!)
 * const channel = new RedisInvalidationChannel({ client })
 * const keys = new KeyManager({ store: new RedisStore({ client }), cache: { ttl: '30s', channel } })
 * ```
 *
 * @example With node-redis
 * ```ts
 * import { createClient } from 'redis'
 * import { KeyManager } from 'keywarden'
 * import { RedisInvalidationChannel } from 'keywarden/adapters/redis'
 *
 * const client = await createClient({ url: process.env.REDIS_URL }).connect()
 * const channel = new RedisInvalidationChannel({ client, channel: 'billing-api:invalidate' })
 * const keys = new KeyManager({ store, cache: { ttl: '30s', channel } })
 * ```
 *
 * @example With a node-redis cluster
 * ```ts
 * import { createCluster } from 'redis'
 * import { KeyManager } from 'keywarden'
 * import { RedisInvalidationChannel, RedisStore } from 'keywarden/adapters/redis'
 *
 * const cluster = await createCluster({ rootNodes: [{ url: 'redis://redis-1:6379' }] }).connect()
 * const channel = new RedisInvalidationChannel({ client: cluster, channel: 'billing-api:invalidate' })
 * const keys = new KeyManager({ store: new RedisStore({ client: cluster, namespace: 'billing-api' }), cache: { ttl: '30s', channel } })
 * ```
 */
export class RedisInvalidationChannel implements InvalidationChannel {
  /** The pub/sub channel name. */
  readonly channel: string

  private readonly client: RedisPubSubClientLike
  private readonly subscriber: RedisPubSubClientLike | undefined
  private readonly subscriberKind: Kind
  private readonly subscribeTimeoutMs: number
  private readonly onError: (error: unknown) => void
  private readonly subscription: SharedSubscription

  /** Keeps the clients; no I/O. @throws {@link keywarden!ConfigError | ConfigError} naming each invalid option. */
  constructor(options: RedisInvalidationChannelOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigError([{ path: [], message: 'must be an object with a client: new RedisInvalidationChannel({ client })' }])
    }
    const issues: ValidationIssue[] = []
    const given = options.subscriber !== undefined
    // With a subscriber of the caller's, the client only publishes.
    const has = methods(options.client)
    const kind = subscriberKind(given ? options.subscriber : options.client)
    if (!has('publish') || (!given && (!has('duplicate') || kind === undefined))) {
      const message =
        typeof options.client === 'function'
          ? 'must be an ioredis or node-redis client: a sendCommand function cannot subscribe'
          : `must be an ioredis Redis or Cluster, or a node-redis client, with publish()${given ? '' : ', duplicate() and subscribe()'}`
      issues.push({ path: ['client'], message })
    }
    if (given && kind === undefined) {
      issues.push({ path: ['subscriber'], message: 'must be an ioredis or node-redis client, for SUBSCRIBE' })
    }
    const channel = options.channel ?? DEFAULT_REDIS_INVALIDATION_CHANNEL
    if (typeof channel !== 'string' || channel.length === 0 || channel.length > 1024) {
      issues.push({ path: ['channel'], message: 'must be a non-empty string of at most 1024 characters' })
    }
    const { subscribeTimeoutMs, onError } = checkCommonOptions(options, issues)
    if (issues.length > 0) throw new ConfigError(issues)
    this.client = options.client
    this.subscriber = options.subscriber
    this.subscriberKind = kind!
    this.channel = channel
    this.subscribeTimeoutMs = subscribeTimeoutMs
    this.onError = onError ?? defaultOnError
    this.subscription = new SharedSubscription((deliver) => this.start(deliver), this.onError)
  }

  /** `PUBLISH <channel> <keyId>` on `client`; rejects with the driver's error. */
  async publish(keyId: string): Promise<void> {
    await this.client.publish(this.channel, keyId)
  }

  /**
   * Delivers every key ID published on the channel (this process's included) to `listener`; resolves
   * once the server confirmed `SUBSCRIBE`, and rejects (closing what it opened) on a driver error or
   * after `subscribeTimeout`. The returned function stops it; the last one closes the connection.
   */
  subscribe(listener: (keyId: string) => void): Promise<() => Promise<void>> {
    return this.subscription.add(listener)
  }

  private start(deliver: (message: string) => void): Promise<() => Promise<void>> {
    const own = this.subscriber === undefined
    if (this.subscriberKind === 'ioredis') {
      const subscriber = (own ? (this.client as IoredisPubSubLike).duplicate() : this.subscriber) as IoredisPubSubLike
      return this.startIoredis(subscriber, own, deliver)
    }
    const subscriber = (own ? (this.client as NodeRedisPubSubLike).duplicate() : this.subscriber) as NodeRedisPubSubLike
    return this.startNodeRedis(subscriber, own, deliver)
  }

  private async startIoredis(subscriber: IoredisPubSubLike, own: boolean, deliver: (message: string) => void): Promise<() => Promise<void>> {
    const onMessage = (channel: string, message: string): void => {
      if (channel === this.channel) deliver(message)
    }
    // Without an 'error' listener ioredis prints every reconnection failure itself.
    if (own) subscriber.on('error', this.onError)
    subscriber.on('message', onMessage)
    try {
      // A caller-owned subscriber that confirms too late is unsubscribed again.
      const late = own ? undefined : () => void subscriber.unsubscribe(this.channel).catch(() => undefined)
      const subscribed = own ? ioredisReady(subscriber).then(() => subscriber.subscribe(this.channel)) : subscriber.subscribe(this.channel)
      await within(subscribed, this.subscribeTimeoutMs, 'SUBSCRIBE', late)
    } catch (error) {
      subscriber.removeListener('message', onMessage)
      if (own) subscriber.disconnect()
      throw error
    }
    return async () => {
      subscriber.removeListener('message', onMessage)
      if (!own) {
        await subscriber.unsubscribe(this.channel)
        return
      }
      try {
        await within(subscriber.quit(), this.subscribeTimeoutMs, 'QUIT')
      } catch {
        subscriber.disconnect()
      }
    }
  }

  private async startNodeRedis(subscriber: NodeRedisPubSubLike, own: boolean, deliver: (message: string) => void): Promise<() => Promise<void>> {
    const onMessage = (message: string | Uint8Array, channel: string | Uint8Array): void => {
      if (text(channel) === this.channel) deliver(text(message))
    }
    if (own) {
      // node-redis throws an 'error' event nobody listens to, which would end the process.
      subscriber.on('error', this.onError)
      try {
        const subscribed = subscriber.connect().then(() => subscriber.subscribe(this.channel, onMessage))
        await within(subscribed, this.subscribeTimeoutMs, 'connecting the subscriber and SUBSCRIBE')
      } catch (error) {
        destroy(subscriber)
        throw error
      }
      return async () => {
        const closing = subscriber.close?.() ?? subscriber.quit?.()
        try {
          if (closing === undefined) throw new Error('no close() or quit()')
          await within(closing, this.subscribeTimeoutMs, 'closing the subscriber')
        } catch {
          destroy(subscriber)
        }
      }
    }
    const late = () => void subscriber.unsubscribe(this.channel, onMessage).catch(() => undefined)
    await within(subscriber.subscribe(this.channel, onMessage), this.subscribeTimeoutMs, 'SUBSCRIBE', late)
    return async () => {
      await subscriber.unsubscribe(this.channel, onMessage)
    }
  }
}

/**
 * Resolves once a fresh ioredis connection is ready: a duplicate of a client with `lazyConnect` waits
 * to be connected, and one with `enableOfflineQueue: false` refuses commands until it is ready.
 */
async function ioredisReady(subscriber: IoredisPubSubLike): Promise<void> {
  if (subscriber.status === 'wait' && subscriber.connect) await subscriber.connect()
  else if (subscriber.status !== undefined && subscriber.status !== 'ready' && subscriber.once) {
    await new Promise<void>((resolve) => subscriber.once!('ready', resolve))
  }
}

/** A pub/sub message or channel name as text (node-redis delivers strings unless asked for Buffers). */
function text(value: string | Uint8Array): string {
  return typeof value === 'string' ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8')
}

/** Drops a node-redis connection at once: `destroy` (v5+) or `disconnect` (v4). */
function destroy(client: NodeRedisPubSubLike): void {
  try {
    if (client.destroy) client.destroy()
    else void client.disconnect?.().catch(() => undefined)
  } catch {
    // Already closed.
  }
}
