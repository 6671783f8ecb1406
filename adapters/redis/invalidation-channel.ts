/**
 * Cache invalidation over Redis pub/sub. Like the store, no Redis driver is imported: the client is
 * recognised by its shape (ioredis has `call`; node-redis does not).
 */
import { randomUUID } from 'node:crypto'
import type { InvalidationChannel, InvalidationSubscriptionEvents } from '../../src/cache.js'
import { ConfigError, type ValidationIssue } from '../../src/errors.js'
import { parseTimerDuration, TIMER_DURATION_MESSAGE, type Duration } from '../../src/policy/duration.js'
import { checkCommonOptions, SharedSubscription, within, type SubscriptionStatus } from '../invalidation.js'
import { isNodeRedisCluster } from './client.js'
import { DEFAULT_NAMESPACE } from './keys.js'

/**
 * Connection events after which a subscriber may be missing messages: ioredis `close`, `end`,
 * `reconnecting` and, on a `Cluster`, `-node`; node-redis `end` and `reconnecting` and, on a cluster,
 * `node-error`, `node-reconnecting`, `node-disconnect` and `sharded-channel-moved-error`.
 * {@link RedisInvalidationChannel} listens to them on its subscriber to report the subscription lost.
 *
 * @example
 * ```ts
 * import type { RedisSubscriberLossEvent } from 'keywarden/adapters/redis'
 *
 * const watched: RedisSubscriberLossEvent[] = ['close', 'end', 'reconnecting']
 * ```
 */
export type RedisSubscriberLossEvent = 'close' | 'end' | 'reconnecting' | '-node' | 'node-error' | 'node-reconnecting' | 'node-disconnect' | 'sharded-channel-moved-error'

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
  /** `SPUBLISH channel message` (Redis 7+), used on a Cluster that has it. */
  spublish?(channel: string, message: string): Promise<unknown>
  /**
   * A new connection with the same options, used as the subscriber unless one is given. A `Cluster`
   * is duplicated with `shardedSubscribers: true` when sharded pub/sub is used.
   */
  duplicate(): IoredisPubSubLike
  /** `SUBSCRIBE`; resolves once the server confirmed. */
  subscribe(...channels: string[]): Promise<unknown>
  /** `UNSUBSCRIBE`, on a subscriber the caller owns. */
  unsubscribe(...channels: string[]): Promise<unknown>
  /** `SSUBSCRIBE` (sharded pub/sub, Redis 7+ Cluster); resolves once the server confirmed. */
  ssubscribe?(...channels: string[]): Promise<unknown>
  /** `SUNSUBSCRIBE`, on a subscriber the caller owns. */
  sunsubscribe?(...channels: string[]): Promise<unknown>
  /** Receives the published messages (`smessage`: those of sharded pub/sub). */
  on(event: 'message' | 'smessage', listener: (channel: string, message: string) => void): unknown
  /** Receives connection errors of a subscriber the channel opened (passed to `onError`). */
  on(event: 'error', listener: (error: Error) => void): unknown
  /** Hears that the subscriber connection closed or reconnects (`-node`: a Cluster lost a node), so messages may be missed. */
  on(event: RedisSubscriberLossEvent, listener: (...args: unknown[]) => void): unknown
  /** Stops receiving messages when the last listener unsubscribes, and stops hearing the connection. */
  removeListener(event: 'message' | 'smessage', listener: (channel: string, message: string) => void): unknown
  /** Stops hearing the connection's events. */
  removeListener(event: RedisSubscriberLossEvent, listener: (...args: unknown[]) => void): unknown
  /** `true` on an ioredis `Cluster`. */
  readonly isCluster?: boolean
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
  /** `SPUBLISH channel message` (Redis 7+), used on a cluster that has it. */
  sPublish?(channel: string, message: string): Promise<unknown>
  /**
   * Sends a raw command: `(args)` on a client, `(firstKey, isReadonly, args)` on a cluster. Used once,
   * on a cluster, for `COMMAND INFO SPUBLISH`.
   */
  sendCommand?(...args: never[]): Promise<unknown>
  /** Only checked for: a node-redis cluster has it. */
  getSlotMaster?(...args: never[]): unknown
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
  /** `SSUBSCRIBE` (sharded pub/sub, Redis 7+ cluster), delivering messages to `listener`. */
  sSubscribe?(channel: string, listener: (message: string, channel: string) => unknown): Promise<unknown>
  /** `SUNSUBSCRIBE` of `listener`, on a subscriber the caller owns. */
  sUnsubscribe?(channel: string, listener: (message: string | Uint8Array, channel: string | Uint8Array) => unknown): Promise<unknown>
  /** Receives connection errors of a subscriber the channel opened (passed to `onError`). */
  on(event: 'error', listener: (error: Error) => void): unknown
  /** Hears that the subscriber connection ended or reconnects (a cluster: `node-*` events), so messages may be missed. */
  on(event: RedisSubscriberLossEvent | 'ready', listener: (...args: unknown[]) => void): unknown
  /** Stops hearing the connection's events. */
  removeListener?(event: RedisSubscriberLossEvent | 'error' | 'ready', listener: (...args: unknown[]) => void): unknown
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
  /**
   * The store's namespace, default `'keywarden'`. On a Cluster with sharded pub/sub it becomes the hash
   * tag of the shard channel ({@link RedisInvalidationChannel.shardChannel}), so a namespace's
   * invalidations travel on the shard that holds its keys. Ignored on standalone Redis.
   */
  readonly namespace?: string
  /**
   * On a Cluster: `'auto'` (default) uses sharded pub/sub (`SPUBLISH` / `SSUBSCRIBE`) when the server
   * has it (Redis 7+, asked once with `COMMAND INFO SPUBLISH`), else `PUBLISH` / `SUBSCRIBE`; `true`
   * forces sharded pub/sub, `false` forces the classic one (e.g. while 0.1.0 instances, which only
   * speak classic pub/sub, still run). Standalone Redis always uses `PUBLISH` / `SUBSCRIBE`.
   */
  readonly sharded?: 'auto' | boolean
  /** How long opening the subscriber connection and `SUBSCRIBE` may take before subscribing fails. Default `'5s'`. */
  readonly subscribeTimeout?: Duration
  /**
   * How often the subscriber proves it still hears the channel, default `'500ms'`; `false` turns it off.
   * Each period the channel publishes a probe of its own; when the previous one has not come back by
   * the next period, the subscribers hear `onLost` (the KeyManager bypasses its cache) until a probe
   * comes back. This catches a subscriber that went deaf without any connection event, as ioredis'
   * sharded subscribers can after a Cluster failover, so a missed invalidation is trusted for about
   * two periods at most, not a whole cache ttl. Costs one publish per period per instance; other
   * instances drop probes that are not theirs unread.
   */
  readonly heartbeat?: Duration | false
  /**
   * Hears errors of the subscriber connection this channel opened (the driver reconnects and
   * resubscribes by itself; invalidations published meanwhile are lost, so the subscribers hear
   * `onLost` until the channel is confirmed listening again). Default: `console.error`.
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
 * through `cache.onError` and never fails a change because of them.
 *
 * Messages lost while the subscriber is disconnected are not replayed. So when the subscriber
 * connection closes or reconnects, the subscribers hear `onLost` (the KeyManager then bypasses its
 * cache), and `onRestored` once a probe message published through `client` came back on the
 * subscriber, which proves it listens again.
 *
 * Works with Redis Cluster too, through an ioredis `Cluster` or a node-redis `createCluster()`. Where
 * the cluster has sharded pub/sub (Redis 7+), it uses `SPUBLISH` / `SSUBSCRIBE` on
 * {@link RedisInvalidationChannel.shardChannel} (tagged with `namespace`, so on the shard that holds the
 * namespace's keys); else `PUBLISH` / `SUBSCRIBE`, which every node forwards to every other.
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
 * @example With a node-redis cluster (sharded pub/sub on Redis 7+)
 * ```ts
 * import { createCluster } from 'redis'
 * import { KeyManager } from 'keywarden'
 * import { RedisInvalidationChannel, RedisStore } from 'keywarden/adapters/redis'
 *
 * const cluster = await createCluster({ rootNodes: [{ url: 'redis://redis-1:6379' }] }).connect()
 * const channel = new RedisInvalidationChannel({ client: cluster, namespace: 'billing-api' })
 * const keys = new KeyManager({ store: new RedisStore({ client: cluster, namespace: 'billing-api' }), cache: { ttl: '30s', channel } })
 * ```
 */
export class RedisInvalidationChannel implements InvalidationChannel {
  /** The pub/sub channel name (standalone Redis, and a Cluster without sharded pub/sub). */
  readonly channel: string
  /**
   * The shard channel name used with sharded pub/sub on a Cluster: `channel` itself when it holds a
   * hash tag (`{...}`), else `{namespace}:channel`, e.g. `{keywarden}:keywarden:invalidate`.
   *
   * @example
   * ```ts
   * import { RedisInvalidationChannel } from 'keywarden/adapters/redis'
   *
   * const channel = new RedisInvalidationChannel({ client: redis, namespace: 'billing-api' })
   * channel.shardChannel // '{billing-api}:keywarden:invalidate'
   * ```
   */
  readonly shardChannel: string

  private readonly client: RedisPubSubClientLike
  private readonly subscriber: RedisPubSubClientLike | undefined
  private readonly subscriberKind: Kind
  private readonly sharded: 'auto' | boolean
  private readonly subscribeTimeoutMs: number
  private readonly heartbeatMs: number | null
  private readonly onError: (error: unknown) => void
  private readonly subscription: SharedSubscription
  /** Probe messages of this object start with it; every instance drops them instead of delivering. */
  private readonly probePrefix = `${PROBE_PREFIX}${randomUUID()}:`
  /** Whether sharded pub/sub is used: asked once, on the first publish or subscribe. */
  private shardedMode: Promise<boolean> | undefined

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
    const namespace = options.namespace ?? DEFAULT_NAMESPACE
    if (typeof namespace !== 'string' || namespace.length === 0 || /[{}]/.test(namespace)) {
      issues.push({ path: ['namespace'], message: 'must be a non-empty string without { or }' })
    }
    const sharded = options.sharded ?? 'auto'
    if (sharded !== 'auto' && typeof sharded !== 'boolean') issues.push({ path: ['sharded'], message: "must be 'auto', true or false" })
    const { subscribeTimeoutMs, onError } = checkCommonOptions(options, issues)
    let heartbeatMs: number | null = DEFAULT_HEARTBEAT_MS
    if (options.heartbeat === false) heartbeatMs = null
    else if (options.heartbeat !== undefined) {
      const ms = parseTimerDuration(options.heartbeat)
      if (ms === undefined) issues.push({ path: ['heartbeat'], message: `${TIMER_DURATION_MESSAGE}, or false` })
      else heartbeatMs = ms
    }
    if (issues.length > 0) throw new ConfigError(issues)
    this.heartbeatMs = heartbeatMs
    this.client = options.client
    this.subscriber = options.subscriber
    this.subscriberKind = kind!
    this.channel = channel
    this.shardChannel = /\{[^}]+\}/.test(channel) ? channel : `{${namespace}}:${channel}`
    this.sharded = sharded
    this.subscribeTimeoutMs = subscribeTimeoutMs
    this.onError = onError ?? defaultOnError
    this.subscription = new SharedSubscription((deliver, status) => this.start(deliver, status), this.onError)
  }

  /**
   * `PUBLISH <channel> <keyId>` on `client` (on a Cluster with sharded pub/sub, `SPUBLISH
   * <shardChannel> <keyId>`); rejects with the driver's error.
   */
  async publish(keyId: string): Promise<void> {
    await this.send(keyId, await this.isSharded())
  }

  /**
   * Delivers every key ID published on the channel (this process's included) to `listener`; resolves
   * once the server confirmed `SUBSCRIBE` (or `SSUBSCRIBE`), and rejects (closing what it opened) on a
   * driver error or after `subscribeTimeout`. The returned function stops it; the last one closes the
   * connection. `events.onLost` hears that the subscriber connection closed or reconnects, and
   * `events.onRestored` that it is confirmed listening again.
   *
   * @example
   * ```ts
   * import { RedisInvalidationChannel } from 'keywarden/adapters/redis'
   *
   * const channel = new RedisInvalidationChannel({ client: redis })
   * const stop = await channel.subscribe((keyId) => console.log('changed', keyId), {
   *   onLost: (cause) => console.warn('invalidations may be missed', cause),
   *   onRestored: () => console.info('listening again'),
   * })
   * await stop()
   * ```
   */
  subscribe(listener: (keyId: string) => void, events?: InvalidationSubscriptionEvents): Promise<() => Promise<void>> {
    return this.subscription.add(listener, events)
  }

  private send(message: string, sharded: boolean): Promise<unknown> {
    const client = this.client
    if (!sharded) return client.publish(this.channel, message)
    if ('spublish' in client && typeof client.spublish === 'function') return client.spublish(this.shardChannel, message)
    if ('sPublish' in client && typeof client.sPublish === 'function') return client.sPublish(this.shardChannel, message)
    return Promise.reject(new Error('keywarden: the Redis client has neither spublish() nor sPublish(), needed for sharded pub/sub'))
  }

  /** Sharded pub/sub on a Cluster whose server has `SPUBLISH`, unless `sharded` says otherwise; never on standalone Redis. */
  private isSharded(): Promise<boolean> {
    return (this.shardedMode ??= this.detectSharded().catch((error: unknown) => {
      this.shardedMode = undefined
      throw error
    }))
  }

  private async detectSharded(): Promise<boolean> {
    const client = this.client as Partial<IoredisPubSubLike & NodeRedisPubSubLike>
    const ioredisCluster = typeof client.call === 'function' && client.isCluster === true
    const nodeRedisCluster = typeof client.call !== 'function' && isNodeRedisCluster(client)
    if (!ioredisCluster && !nodeRedisCluster) return false
    if (this.sharded !== 'auto') return this.sharded
    const reply = ioredisCluster
      ? await client.call!('COMMAND', 'INFO', 'SPUBLISH')
      : await (client.sendCommand as (firstKey: string | undefined, isReadonly: boolean, args: string[]) => Promise<unknown>)(undefined, true, ['COMMAND', 'INFO', 'SPUBLISH'])
    // Redis 7+ describes the command; older servers answer [nil].
    return Array.isArray(reply) && reply.length > 0 && Array.isArray(reply[0])
  }

  private async start(deliver: (message: string) => void, status: SubscriptionStatus): Promise<() => Promise<void>> {
    const sharded = await this.isSharded()
    const health = new SubscriberHealth(status, this.probePrefix, (probe) => this.send(probe, sharded), this.heartbeatMs)
    const receive = (message: string): void => {
      if (message.startsWith(PROBE_PREFIX)) health.heard(message)
      else deliver(message)
    }
    const own = this.subscriber === undefined
    try {
      if (this.subscriberKind === 'ioredis') {
        const client = this.client as IoredisPubSubLike
        const subscriber = own ? duplicateIoredis(client, sharded) : (this.subscriber as IoredisPubSubLike)
        const stop = await this.startIoredis(subscriber, { own, sharded, receive, health })
        health.beat()
        return async () => {
          health.stop()
          await stop()
        }
      }
      const subscriber = (own ? (this.client as NodeRedisPubSubLike).duplicate() : this.subscriber) as NodeRedisPubSubLike
      const stop = await this.startNodeRedis(subscriber, { own, sharded, receive, health })
      health.beat()
      return async () => {
        health.stop()
        await stop()
      }
    } catch (error) {
      health.stop()
      throw error
    }
  }

  private async startIoredis(subscriber: IoredisPubSubLike, { own, sharded, receive, health }: SubscriberSetup): Promise<() => Promise<void>> {
    const name = sharded ? this.shardChannel : this.channel
    const messageEvent = sharded ? 'smessage' : 'message'
    const onMessage = (channel: string, message: string): void => {
      if (channel === name) receive(message)
    }
    const onLoss = (...args: unknown[]): void => health.lost(args.find((arg) => arg instanceof Error))
    const lossEvents: RedisSubscriberLossEvent[] = subscriber.isCluster === true ? ['close', 'end', 'reconnecting', '-node'] : ['close', 'end', 'reconnecting']
    const unwatch = () => {
      subscriber.removeListener(messageEvent, onMessage)
      for (const event of lossEvents) subscriber.removeListener(event, onLoss)
    }
    const command = (verb: 'subscribe' | 'unsubscribe') => {
      if (!sharded) return subscriber[verb](name)
      const method = verb === 'subscribe' ? subscriber.ssubscribe : subscriber.sunsubscribe
      if (method === undefined) return Promise.reject(new Error('keywarden: the ioredis client has no ssubscribe(), needed for sharded pub/sub'))
      return method.call(subscriber, name)
    }
    if (sharded && !own && subscriber.isCluster === true && (subscriber as { options?: { shardedSubscribers?: unknown } }).options?.shardedSubscribers !== true) {
      throw new Error('keywarden: sharded pub/sub needs the subscriber Cluster created with shardedSubscribers: true (or pass sharded: false)')
    }
    // Without an 'error' listener ioredis prints every reconnection failure itself.
    if (own) subscriber.on('error', this.onError)
    subscriber.on(messageEvent, onMessage)
    try {
      // A caller-owned subscriber that confirms too late is unsubscribed again.
      const late = own ? undefined : () => void command('unsubscribe').catch(() => undefined)
      const subscribed = own ? ioredisReady(subscriber).then(() => command('subscribe')) : command('subscribe')
      await within(subscribed, this.subscribeTimeoutMs, sharded ? 'SSUBSCRIBE' : 'SUBSCRIBE', late)
    } catch (error) {
      unwatch()
      if (own) subscriber.disconnect()
      throw error
    }
    for (const event of lossEvents) subscriber.on(event, onLoss)
    return async () => {
      unwatch()
      if (!own) {
        await command('unsubscribe')
        return
      }
      try {
        await within(subscriber.quit(), this.subscribeTimeoutMs, 'QUIT')
      } catch {
        subscriber.disconnect()
      }
    }
  }

  private async startNodeRedis(subscriber: NodeRedisPubSubLike, { own, sharded, receive, health }: SubscriberSetup): Promise<() => Promise<void>> {
    const name = sharded ? this.shardChannel : this.channel
    const onMessage = (message: string | Uint8Array, channel: string | Uint8Array): void => {
      if (text(channel) === name) receive(text(message))
    }
    const onLoss = (...args: unknown[]): void => health.lost(args.find((arg) => arg instanceof Error))
    const lossEvents: RedisSubscriberLossEvent[] = isNodeRedisCluster(subscriber)
      ? ['node-error', 'node-reconnecting', 'node-disconnect', 'sharded-channel-moved-error']
      : ['end', 'reconnecting']
    const subscribe = (): Promise<unknown> => {
      if (!sharded) return subscriber.subscribe(name, onMessage)
      if (subscriber.sSubscribe === undefined) return Promise.reject(new Error('keywarden: the node-redis client has no sSubscribe(), needed for sharded pub/sub'))
      return subscriber.sSubscribe(name, onMessage)
    }
    const unsubscribe = (): Promise<unknown> => (sharded ? (subscriber.sUnsubscribe?.(name, onMessage) ?? Promise.resolve()) : subscriber.unsubscribe(name, onMessage))
    const watch = (): void => {
      for (const event of lossEvents) subscriber.on(event, onLoss)
      // A standalone client's own connection errors mean the socket is gone, too.
      if (!isNodeRedisCluster(subscriber)) subscriber.on('error', onLoss)
    }
    const unwatch = (): void => {
      for (const event of lossEvents) subscriber.removeListener?.(event, onLoss)
      subscriber.removeListener?.('error', onLoss)
    }
    if (own) {
      // node-redis throws an 'error' event nobody listens to, which would end the process.
      subscriber.on('error', this.onError)
      try {
        const subscribed = subscriber.connect().then(subscribe)
        await within(subscribed, this.subscribeTimeoutMs, `connecting the subscriber and ${sharded ? 'SSUBSCRIBE' : 'SUBSCRIBE'}`)
      } catch (error) {
        destroy(subscriber)
        throw error
      }
      watch()
      return async () => {
        unwatch()
        const closing = subscriber.close?.() ?? subscriber.quit?.()
        try {
          if (closing === undefined) throw new Error('no close() or quit()')
          await within(closing, this.subscribeTimeoutMs, 'closing the subscriber')
        } catch {
          destroy(subscriber)
        }
      }
    }
    const late = () => void unsubscribe().catch(() => undefined)
    await within(subscribe(), this.subscribeTimeoutMs, sharded ? 'SSUBSCRIBE' : 'SUBSCRIBE', late)
    watch()
    return async () => {
      unwatch()
      await unsubscribe()
    }
  }
}

/** Probe messages start with it: never a key ID (those are printable), so every version can drop them. */
const PROBE_PREFIX = '\u0000keywarden-probe:'
/** How often a lost subscriber sends a probe through the publishing client, until one comes back. */
const PROBE_INTERVAL_MS = 100
/** {@link RedisInvalidationChannelOptions.heartbeat}'s default. */
const DEFAULT_HEARTBEAT_MS = 500

/** How one subscription is set up, whatever the client. */
interface SubscriberSetup {
  /** Whether the subscriber connection is the channel's own (made with duplicate()), to close on unsubscribe. */
  readonly own: boolean
  /** Sharded pub/sub (SSUBSCRIBE) rather than SUBSCRIBE. */
  readonly sharded: boolean
  readonly receive: (message: string) => void
  readonly health: SubscriberHealth
}

/**
 * Whether a subscriber may be missing messages: lost at the first sign of a dropped connection (or a
 * heartbeat that did not come back), and restored only when a probe it published after that came back
 * on the subscriber (the drivers resubscribe by themselves; the probe proves they did, whatever the
 * driver's events say).
 */
class SubscriberHealth {
  private isLost = false
  private stopped = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private probe: string | undefined
  private heartbeatTimer: ReturnType<typeof setTimeout> | undefined
  /** The heartbeat published last period and not heard yet. */
  private pendingBeat: string | undefined

  constructor(
    private readonly status: SubscriptionStatus,
    private readonly prefix: string,
    private readonly publish: (probe: string) => Promise<unknown>,
    private readonly heartbeatMs: number | null,
  ) {}

  /** Starts the heartbeat (once subscribed): each period, the last beat must have come back. */
  beat(): void {
    if (this.heartbeatMs === null || this.stopped) return
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatTimer = undefined
      if (this.stopped) return
      if (!this.isLost) {
        if (this.pendingBeat !== undefined) {
          this.lost(new Error('keywarden: the invalidation subscriber did not hear its own heartbeat; it may be missing messages'))
        } else {
          this.pendingBeat = `${this.prefix}${randomUUID()}`
          this.publish(this.pendingBeat).catch(() => undefined)
        }
      }
      this.beat()
    }, this.heartbeatMs)
    this.heartbeatTimer.unref?.()
  }

  lost(cause: unknown): void {
    if (this.stopped) return
    // A probe sent before this loss proves nothing about the connection after it.
    this.probe = undefined
    this.pendingBeat = undefined
    if (!this.isLost) {
      this.isLost = true
      this.status.lost(cause)
    }
    this.schedule()
  }

  heard(message: string): void {
    if (message === this.pendingBeat) this.pendingBeat = undefined
    if (this.stopped || !this.isLost || this.probe === undefined || message !== this.probe) return
    this.isLost = false
    this.probe = undefined
    clearTimeout(this.timer)
    this.timer = undefined
    this.status.restored()
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    clearTimeout(this.heartbeatTimer)
    this.timer = undefined
    this.heartbeatTimer = undefined
  }

  private schedule(): void {
    if (this.timer !== undefined || this.stopped) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (!this.isLost || this.stopped) return
      // The same probe again until it comes back: one sent before the resubscription is simply not heard.
      this.probe ??= `${this.prefix}${randomUUID()}`
      this.publish(this.probe).catch(() => undefined)
      this.schedule()
    }, PROBE_INTERVAL_MS)
    this.timer.unref?.()
  }
}

/** A subscriber connection for `client`; a Cluster for sharded pub/sub subscribes through one sharded subscriber per shard. */
function duplicateIoredis(client: IoredisPubSubLike, sharded: boolean): IoredisPubSubLike {
  if (!sharded || client.isCluster !== true) return client.duplicate()
  const duplicate = client.duplicate as unknown as (startupNodes: unknown[], options: object) => IoredisPubSubLike
  return duplicate.call(client, [], { shardedSubscribers: true })
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
