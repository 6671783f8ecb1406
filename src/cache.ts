/**
 * The verification cache (an LRU of store reads with bounded staleness) and the invalidation channel
 * contract that carries changes between instances.
 */
import type { StoredKey } from './store.js'

/**
 * Carries "this key changed" between processes that share a store, so each can drop its cached copy
 * at once. Adapters provide one per infrastructure (Redis pub/sub, PostgreSQL LISTEN/NOTIFY);
 * {@link LocalInvalidationChannel} links managers inside one process.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { RedisInvalidationChannel } from 'keywarden/adapters/redis'
 *
 * const keys = new KeyManager({ store, cache: { ttl: '30s', channel: new RedisInvalidationChannel({ client: redis }) } })
 * ```
 */
export interface InvalidationChannel {
  /** Tells every subscriber (this process's included) that the key changed. */
  publish(keyId: string): Promise<void>
  /**
   * Starts delivering invalidations to `listener`; resolves once listening. Returns a function that
   * stops it. While the channel is down, cached entries still expire after the cache's `ttl`.
   *
   * A channel that can tell when it may be missing messages calls `events.onLost` then (its connection
   * failed or is reconnecting), and `events.onRestored` once it is confirmed listening again; the
   * KeyManager stops trusting its cache in between. Both are optional, for the channel and for the
   * subscriber: a channel that ignores `events` works as before (the `ttl` bounds staleness).
   *
   * @example A channel reporting its connection's state
   * ```ts
   * import type { InvalidationChannel, InvalidationSubscriptionEvents } from 'keywarden'
   *
   * declare const bus: { on(event: 'message' | 'down' | 'up', listener: (text?: string) => void): void; send(text: string): Promise<void> }
   *
   * const channel: InvalidationChannel = {
   *   publish: (keyId) => bus.send(keyId),
   *   async subscribe(listener, events?: InvalidationSubscriptionEvents) {
   *     bus.on('message', (text) => text !== undefined && listener(text))
   *     bus.on('down', () => events?.onLost?.(new Error('bus disconnected')))
   *     bus.on('up', () => events?.onRestored?.())
   *     return async () => undefined
   *   },
   * }
   * ```
   */
  subscribe(listener: (keyId: string) => void, events?: InvalidationSubscriptionEvents): Promise<() => Promise<void>>
}

/**
 * What a subscriber of an {@link InvalidationChannel} hears about the subscription itself, besides the
 * key IDs: that messages may be getting lost, and that they no longer are. A channel calls them in
 * turn (`onLost`, then `onRestored`, then maybe `onLost` again); a repeated `onLost` is allowed and
 * means nothing new. Listeners must not throw.
 *
 * @example
 * ```ts
 * import { LocalInvalidationChannel, type InvalidationSubscriptionEvents } from 'keywarden'
 *
 * const events: InvalidationSubscriptionEvents = {
 *   onLost: (cause) => console.warn('invalidations may be missed', cause),
 *   onRestored: () => console.info('invalidations arrive again'),
 * }
 * const stop = await new LocalInvalidationChannel().subscribe((keyId) => console.log(keyId), events)
 * await stop()
 * ```
 */
export interface InvalidationSubscriptionEvents {
  /**
   * The subscription may miss messages from now on (its connection was lost, or is reconnecting);
   * `cause` is the driver's error when there is one. Messages published until `onRestored` may never
   * arrive. The KeyManager empties its cache and reads the store on every verify until then.
   *
   * @example
   * ```ts
   * import type { InvalidationSubscriptionEvents } from 'keywarden'
   *
   * const events: InvalidationSubscriptionEvents = { onLost: (cause) => console.warn('channel lost', cause) }
   * ```
   */
  onLost?(cause?: unknown): void
  /**
   * The subscription is confirmed to receive messages again (e.g. a message sent through the channel
   * came back after the reconnect). Messages sent while it was lost are not replayed: the KeyManager
   * empties its cache once more, then caches again.
   *
   * @example
   * ```ts
   * import type { InvalidationSubscriptionEvents } from 'keywarden'
   *
   * const events: InvalidationSubscriptionEvents = { onRestored: () => console.info('channel back') }
   * ```
   */
  onRestored?(): void
}

/**
 * An {@link InvalidationChannel} inside one process, e.g. for several KeyManagers on one store, and
 * for tests.
 *
 * @example
 * ```ts
 * import { KeyManager, LocalInvalidationChannel } from 'keywarden'
 *
 * const channel = new LocalInvalidationChannel()
 * const a = new KeyManager({ store, cache: { channel } })
 * const b = new KeyManager({ store, cache: { channel } })
 * ```
 */
export class LocalInvalidationChannel implements InvalidationChannel {
  private readonly listeners = new Set<(keyId: string) => void>()

  async publish(keyId: string): Promise<void> {
    for (const listener of [...this.listeners]) listener(keyId)
  }

  /** Delivers every published key ID to `listener`; `events` is never called, as nothing in one process can be lost. */
  async subscribe(listener: (keyId: string) => void, _events?: InvalidationSubscriptionEvents): Promise<() => Promise<void>> {
    this.listeners.add(listener)
    return async () => void this.listeners.delete(listener)
  }
}

interface Entry {
  /** `null` caches "no such key" (the negative cache). */
  readonly record: StoredKey | null
  readonly expiresAt: number
}

/** One bounded LRU: a Map keeps insertion order, so the first entry is the least recently used. */
class Lru {
  private readonly entries = new Map<string, Entry>()

  constructor(private readonly maxEntries: number) {}

  get(keyId: string, now: number): Entry | undefined {
    const entry = this.entries.get(keyId)
    if (entry === undefined) return undefined
    this.entries.delete(keyId)
    if (now >= entry.expiresAt) return undefined
    this.entries.set(keyId, entry)
    return entry
  }

  set(keyId: string, entry: Entry): void {
    this.entries.delete(keyId)
    this.entries.set(keyId, entry)
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!)
  }

  delete(keyId: string): void {
    this.entries.delete(keyId)
  }

  clear(): void {
    this.entries.clear()
  }

  get size(): number {
    return this.entries.size
  }
}

/**
 * A bounded LRU of store reads for verify, with bounded staleness: an entry lives at most `ttlMs`
 * (`negativeTtlMs` for unknown IDs) counted from the moment its read started, so a change made while
 * a slow read was under way is seen within `ttlMs` of that change. Errors are never cached. A read
 * that started before an invalidation is not cached, so a racing revoke cannot be undone by a slow read.
 * Unknown IDs live in an LRU of their own: a flood of forged IDs can only evict other forged IDs, never
 * the keys that are really in use.
 */
export class VerifyCache {
  readonly #known: Lru
  readonly #unknown: Lru
  /** Bumped by every invalidation; a fill is kept only if none happened since its read began. */
  #epoch = 0

  constructor(
    maxEntries: number,
    private readonly ttlMs: number,
    private readonly negativeTtlMs: number,
    negativeMaxEntries: number = maxEntries,
  ) {
    this.#known = new Lru(maxEntries)
    this.#unknown = new Lru(negativeMaxEntries)
  }

  /** The cached read for `keyId` at `now`, or `undefined` on a miss. */
  lookup(keyId: string, now: number): Entry | undefined {
    return this.#known.get(keyId, now) ?? this.#unknown.get(keyId, now)
  }

  /** Marks the start of a store read; pass the result to {@link VerifyCache.fill}. */
  begin(): number {
    return this.#epoch
  }

  /**
   * Keeps `record`, read from the store by a read that began at `readStartedAt` (clock ms) in `epoch`.
   * Its lifetime counts from the read's start: the record may show the store as it was then.
   */
  fill(keyId: string, record: StoredKey | null, readStartedAt: number, epoch: number): void {
    if (epoch !== this.#epoch) return
    if (record === null) {
      this.#known.delete(keyId)
      this.#unknown.set(keyId, { record, expiresAt: readStartedAt + this.negativeTtlMs })
    } else {
      this.#unknown.delete(keyId)
      this.#known.set(keyId, { record, expiresAt: readStartedAt + this.ttlMs })
    }
  }

  invalidate(keyId: string): void {
    this.#epoch++
    this.#known.delete(keyId)
    this.#unknown.delete(keyId)
  }

  clear(): void {
    this.#epoch++
    this.#known.clear()
    this.#unknown.clear()
  }

  /** Entries held, known and unknown IDs together. */
  get size(): number {
    return this.#known.size + this.#unknown.size
  }
}
