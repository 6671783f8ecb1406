/**
 * Cache invalidation over PostgreSQL LISTEN/NOTIFY, through a `pg` pool recognised by its shape (no
 * driver import).
 */
import type { InvalidationChannel, InvalidationSubscriptionEvents } from '../../../src/cache.js'
import { ConfigError, type ValidationIssue } from '../../../src/errors.js'
import type { Duration } from '../../../src/policy/duration.js'
import { checkCommonOptions, SharedSubscription, within, type SubscriptionStatus } from '../../invalidation.js'
import type { PgQueryable } from './store.js'

/**
 * A notification as `pg` emits it on the listening client.
 *
 * @example
 * ```ts
 * import type { PgNotification } from 'keywarden/adapters/sql'
 *
 * const client = await pool.connect()
 * client.on('notification', (message: PgNotification) => console.log(message.channel, message.payload))
 * await client.query('LISTEN keywarden_invalidate')
 * ```
 */
export interface PgNotification {
  /** The channel it was sent on. */
  readonly channel: string
  /** The payload: here, the changed key's ID. */
  readonly payload?: string | undefined
}

/**
 * What {@link PostgresInvalidationChannel} uses of a client checked out of the pool: `query`, the
 * `notification`, `error` and `end` events, and `release`.
 *
 * @example
 * ```ts
 * import type { PgListenClient } from 'keywarden/adapters/sql'
 *
 * const client: PgListenClient = await pool.connect()
 * client.release()
 * ```
 */
export interface PgListenClient extends PgQueryable {
  /** Receives the notifications of `LISTEN`. */
  on(event: 'notification', listener: (message: PgNotification) => void): unknown
  /** Hears that the connection failed; the channel then listens again on a fresh one. */
  on(event: 'error', listener: (error: Error) => void): unknown
  /** Hears that the connection ended; the channel then listens again on a fresh one. */
  on(event: 'end', listener: () => void): unknown
  /** Stops receiving notifications. */
  removeListener(event: 'notification', listener: (message: PgNotification) => void): unknown
  /** Stops hearing errors. */
  removeListener(event: 'error', listener: (error: Error) => void): unknown
  /** Stops hearing the end. */
  removeListener(event: 'end', listener: () => void): unknown
  /** Returns the client to the pool; `true` drops a failed connection instead. */
  release(destroy?: boolean | Error): void
}

/**
 * What {@link PostgresInvalidationChannel} uses of a `pg.Pool`: `query` to notify, `connect` to check
 * out the listening connection.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { KeyManager } from 'keywarden'
 * import { PostgresInvalidationChannel, type PgListenPool } from 'keywarden/adapters/sql'
 *
 * const pool: PgListenPool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const keys = new KeyManager({ store, cache: { ttl: '30s', channel: new PostgresInvalidationChannel({ pool }) } })
 * ```
 */
export interface PgListenPool extends PgQueryable {
  /** Checks out the client that runs `LISTEN`, kept until the last unsubscribe. */
  connect(): Promise<PgListenClient>
  /** Only checked for: it tells a pool from a single client, which cannot lend a connection. */
  readonly totalCount: number
}

/**
 * Options of {@link PostgresInvalidationChannel}.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { PostgresInvalidationChannel, type PostgresInvalidationChannelOptions } from 'keywarden/adapters/sql'
 *
 * const options: PostgresInvalidationChannelOptions = { pool, channel: 'billing_keys_invalidate' }
 * const channel = new PostgresInvalidationChannel(options)
 * const keys = new KeyManager({ store, cache: { ttl: '30s', channel } })
 * ```
 */
export interface PostgresInvalidationChannelOptions {
  /**
   * A `pg.Pool`. `publish` runs on it; subscribing checks out one client for `LISTEN` and keeps it
   * until the last unsubscribe (count it in the pool's `max`). The channel never ends the pool.
   */
  readonly pool: PgListenPool
  /**
   * The notification channel, default `'keywarden_invalidate'`: 1-63 letters, digits or underscores,
   * not starting with a digit (quoted, so case-sensitive). Every instance sharing a store (table) must
   * use the same name.
   */
  readonly channel?: string
  /** How long checking out the connection and `LISTEN` may take before subscribing fails. Default `'5s'`. */
  readonly subscribeTimeout?: Duration
  /**
   * Hears the failures of the listening connection: its `error` (e.g. the backend was terminated), and
   * failed attempts to listen again. Default: `console.error`.
   */
  readonly onError?: (error: unknown) => void
}

/**
 * The notification channel used when none is given.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { DEFAULT_POSTGRES_INVALIDATION_CHANNEL, PostgresInvalidationChannel } from 'keywarden/adapters/sql'
 *
 * const channel = new PostgresInvalidationChannel({ pool })
 * channel.channel === DEFAULT_POSTGRES_INVALIDATION_CHANNEL // 'keywarden_invalidate'
 * const keys = new KeyManager({ store, cache: { ttl: '30s', channel } })
 * ```
 */
export const DEFAULT_POSTGRES_INVALIDATION_CHANNEL = 'keywarden_invalidate'

const CHANNEL_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
/** Waits before listening again after the connection was lost: doubling from the first, up to the last. */
const RELISTEN_DELAY_MS = { first: 250, max: 30_000 } as const

function defaultOnError(error: unknown): void {
  console.error('keywarden: the PostgreSQL invalidation listener failed; other instances\' changes reach this one within the cache ttl', error)
}

/**
 * An {@link InvalidationChannel} on PostgreSQL LISTEN/NOTIFY, for a KeyManager `cache`: every
 * management call runs `SELECT pg_notify(channel, keyId)`, and every instance listening on `channel`
 * drops its cached copy. The first `subscribe` checks out one client from the pool and runs `LISTEN`
 * on it (shared by every listener of this object); the last unsubscribe (e.g. `keys.close()`) runs
 * `UNLISTEN` and returns the client to the pool. Errors of `publish` and `subscribe` propagate; the
 * KeyManager reports them through `cache.onError` and never fails a change because of them.
 *
 * If the listening connection fails (its `error` or `end` event: a restart, a terminated backend, a
 * network cut), it is dropped from the pool (`release(true)`), `onError` hears of it, and the channel
 * listens again on a fresh connection after 250 ms, doubling up to 30 s while that fails.
 * Notifications sent meanwhile are lost, so the subscribers hear `onLost` at once and `onRestored`
 * once `LISTEN` ran again: the KeyManager reads the store, bypassing its cache, in between.
 *
 * Notifications need a real session: behind PgBouncer in transaction mode, give the pool a direct
 * connection. A notification sent inside a transaction is delivered at its commit.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { KeyManager } from 'keywarden'
 * import { PostgresInvalidationChannel, PostgresStore } from 'keywarden/adapters/sql'
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const store = new PostgresStore({ pool })
 * const channel = new PostgresInvalidationChannel({ pool })
 * const keys = new KeyManager({ store, cache: { ttl: '30s', channel } })
 * ```
 */
export class PostgresInvalidationChannel implements InvalidationChannel {
  /** The notification channel. */
  readonly channel: string

  private readonly pool: PgListenPool
  private readonly subscribeTimeoutMs: number
  private readonly onError: (error: unknown) => void
  private readonly subscription: SharedSubscription

  /** Keeps the pool; no I/O. @throws {@link keywarden!ConfigError | ConfigError} naming each invalid option. */
  constructor(options: PostgresInvalidationChannelOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigError([{ path: [], message: 'must be an object with a pool: new PostgresInvalidationChannel({ pool })' }])
    }
    const issues: ValidationIssue[] = []
    const pool = options.pool as Partial<PgListenPool> | undefined
    if (typeof pool?.query !== 'function' || typeof pool.connect !== 'function' || typeof pool.totalCount !== 'number') {
      issues.push({ path: ['pool'], message: 'must be a pg Pool (LISTEN needs a connection of its own)' })
    }
    const channel = options.channel ?? DEFAULT_POSTGRES_INVALIDATION_CHANNEL
    if (typeof channel !== 'string' || !CHANNEL_PATTERN.test(channel)) {
      issues.push({ path: ['channel'], message: 'must be 1-63 letters, digits or underscores, not starting with a digit' })
    }
    const { subscribeTimeoutMs, onError } = checkCommonOptions(options, issues)
    if (issues.length > 0) throw new ConfigError(issues)
    this.pool = options.pool
    this.channel = channel
    this.subscribeTimeoutMs = subscribeTimeoutMs
    this.onError = onError ?? defaultOnError
    this.subscription = new SharedSubscription((deliver, status) => this.start(deliver, status), this.onError)
  }

  /** `SELECT pg_notify(channel, keyId)` on the pool; rejects with the driver's error. */
  async publish(keyId: string): Promise<void> {
    await this.pool.query('SELECT pg_notify($1, $2)', [this.channel, keyId])
  }

  /**
   * Delivers every key ID notified on the channel (this process's included) to `listener`; resolves
   * once `LISTEN` ran, and rejects (returning the client) on a driver error or after
   * `subscribeTimeout`. The returned function stops it; the last one runs `UNLISTEN` and releases the
   * client. `events.onLost` hears that the listening connection failed (its `error` or `end`), and
   * `events.onRestored` that `LISTEN` ran again on a fresh one.
   *
   * @example
   * ```ts
   * import { PostgresInvalidationChannel } from 'keywarden/adapters/sql'
   *
   * const channel = new PostgresInvalidationChannel({ pool })
   * const stop = await channel.subscribe((keyId) => console.log('changed', keyId), { onLost: () => console.warn('LISTEN lost') })
   * await stop()
   * ```
   */
  subscribe(listener: (keyId: string) => void, events?: InvalidationSubscriptionEvents): Promise<() => Promise<void>> {
    return this.subscription.add(listener, events)
  }

  /**
   * Listens on a client of its own, again on a fresh one whenever it fails, until stopped. A failure
   * is reported lost at once, and restored once `LISTEN` ran on the fresh connection.
   */
  private async start(deliver: (message: string) => void, status: SubscriptionStatus): Promise<() => Promise<void>> {
    let stopped = false
    let current: Listening | undefined
    let retry: ReturnType<typeof setTimeout> | undefined
    let failures = 0

    const relisten = (): void => {
      const delay = Math.min(RELISTEN_DELAY_MS.first * 2 ** failures++, RELISTEN_DELAY_MS.max)
      retry = setTimeout(() => {
        retry = undefined
        listen().catch((error: unknown) => {
          if (stopped) return
          this.onError(error)
          relisten()
        })
      }, delay)
      retry.unref?.()
    }

    const listen = async (): Promise<void> => {
      const attempt: { listening?: Listening } = {}
      const listening = await this.listen(deliver, (error) => {
        if (attempt.listening === undefined || current !== attempt.listening) return
        current = undefined
        if (stopped) return
        status.lost(error)
        this.onError(error)
        relisten()
      })
      attempt.listening = listening
      if (stopped) {
        await listening.stop()
        return
      }
      current = listening
      if (failures > 0) status.restored()
      failures = 0
    }

    await listen()
    return async () => {
      stopped = true
      clearTimeout(retry)
      const listening = current
      current = undefined
      await listening?.stop()
    }
  }

  /** Checks out a client and runs LISTEN on it; `lost` hears once if the connection fails afterwards. */
  private async listen(deliver: (message: string) => void, lost: (error: Error) => void): Promise<Listening> {
    const client = await within(this.pool.connect(), this.subscribeTimeoutMs, 'checking out a client for LISTEN', (late) => late.release())
    let done = false
    let listening = false
    const onNotification = (message: PgNotification): void => {
      if (message.channel === this.channel) deliver(message.payload ?? '')
    }
    const drop = (error: Error): void => {
      if (done) return
      done = true
      client.removeListener('notification', onNotification)
      client.removeListener('end', onEnd)
      // The 'error' listener stays: pg throws an 'error' event nobody listens to.
      client.release(true)
      // Before LISTEN completed, the failing query reports it instead.
      if (listening) lost(error)
    }
    const onError = (error: Error): void => drop(error)
    const onEnd = (): void => drop(new Error('keywarden: the PostgreSQL LISTEN connection ended'))
    client.on('notification', onNotification)
    client.on('error', onError)
    client.on('end', onEnd)
    try {
      await within(client.query(`LISTEN "${this.channel}"`), this.subscribeTimeoutMs, 'LISTEN')
    } catch (error) {
      if (!done) {
        done = true
        client.removeListener('notification', onNotification)
        client.removeListener('end', onEnd)
        client.release(true)
      }
      throw error
    }
    listening = true
    return {
      stop: async () => {
        if (done) return
        done = true
        client.removeListener('notification', onNotification)
        client.removeListener('end', onEnd)
        try {
          await within(client.query(`UNLISTEN "${this.channel}"`), this.subscribeTimeoutMs, 'UNLISTEN')
        } catch (error) {
          client.release(true)
          throw error
        }
        client.removeListener('error', onError)
        client.release()
      },
    }
  }
}

interface Listening {
  stop(): Promise<void>
}
