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
   */
  subscribe(listener: (keyId: string) => void): Promise<() => Promise<void>>
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

  async subscribe(listener: (keyId: string) => void): Promise<() => Promise<void>> {
    this.listeners.add(listener)
    return async () => void this.listeners.delete(listener)
  }
}

interface Entry {
  /** `null` caches "no such key" (the negative cache). */
  readonly record: StoredKey | null
  readonly expiresAt: number
}

/**
 * A bounded LRU of store reads for verify, with bounded staleness: an entry lives at most `ttlMs`
 * (`negativeTtlMs` for unknown IDs) counted from the moment its read started, so a change made while
 * a slow read was under way is seen within `ttlMs` of that change. Errors are never cached. A read
 * that started before an invalidation is not cached, so a racing revoke cannot be undone by a slow read.
 */
export class VerifyCache {
  private readonly entries = new Map<string, Entry>()
  /** Bumped by every invalidation; a fill is kept only if none happened since its read began. */
  private epoch = 0

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly negativeTtlMs: number,
  ) {}

  /** The cached read for `keyId` at `now`, or `undefined` on a miss. */
  lookup(keyId: string, now: number): Entry | undefined {
    const entry = this.entries.get(keyId)
    if (entry === undefined) return undefined
    if (now >= entry.expiresAt) {
      this.entries.delete(keyId)
      return undefined
    }
    // Most recently used last: the first entry is the one to evict.
    this.entries.delete(keyId)
    this.entries.set(keyId, entry)
    return entry
  }

  /** Marks the start of a store read; pass the result to {@link VerifyCache.fill}. */
  begin(): number {
    return this.epoch
  }

  /**
   * Keeps `record`, read from the store by a read that began at `readStartedAt` (clock ms) in `epoch`.
   * Its lifetime counts from the read's start: the record may show the store as it was then.
   */
  fill(keyId: string, record: StoredKey | null, readStartedAt: number, epoch: number): void {
    if (epoch !== this.epoch) return
    this.entries.delete(keyId)
    this.entries.set(keyId, { record, expiresAt: readStartedAt + (record === null ? this.negativeTtlMs : this.ttlMs) })
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!)
  }

  invalidate(keyId: string): void {
    this.epoch++
    this.entries.delete(keyId)
  }

  clear(): void {
    this.epoch++
    this.entries.clear()
  }

  get size(): number {
    return this.entries.size
  }
}
