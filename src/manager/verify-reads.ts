/**
 * How verify reads a key: straight from the store, or through the verification cache, which other
 * instances keep fresh over an invalidation channel when one is configured. A store with
 * `getForVerify` (a read replica) is read through it, and told which keys changed since their last read.
 * Otherwise a store with `getSync` (in-process reads) answers at once, without a promise, as a cache hit does.
 */
import { VerifyCache } from '../cache.js'
import type { ResolvedOptions } from '../options.js'
import type { KeyStore, StoredKey } from '../store.js'
import { asStoreError } from '../store-failure.js'

/** How long a failed channel subscription waits before the next verify may try again, at most. */
const MAX_RESUBSCRIBE_DELAY_MS = 5_000

const CHANGED = Object.freeze({ changed: true })

/** How many changed keys wait to be read with `changed: true`; beyond it, the oldest are forgotten. */
const MAX_CHANGED_KEYS = 10_000

export class VerifyReads {
  readonly #store: KeyStore
  readonly #clock: () => number
  readonly #settings: ResolvedOptions['cache']
  readonly #cache: VerifyCache | null
  /**
   * Keys changed (here, or on another instance as the channel said) since verify last read them, in
   * the order they changed: the next read of each tells `getForVerify`, which then reads the primary
   * rather than a replica that may not have the change yet. Only for stores with `getForVerify`.
   */
  readonly #changed = new Set<string>()
  #subscription: Promise<(() => Promise<void>) | undefined> | undefined
  /** Whether the store has `getForVerify`: known once, not asked on every read. */
  readonly #readsForVerify: boolean
  /** Whether verify reads with `getSync` (the store has it, and no `getForVerify`, the more specific read). */
  readonly #readsSync: boolean
  /**
   * The channel said it may be missing messages and has not said it is back: the cache is not
   * trusted, every read goes to the store, and nothing is cached.
   */
  #lost = false

  constructor(store: KeyStore, clock: () => number, settings: ResolvedOptions['cache']) {
    this.#store = store
    this.#readsForVerify = typeof store.getForVerify === 'function'
    this.#readsSync = !this.#readsForVerify && typeof store.getSync === 'function'
    this.#clock = clock
    this.#settings = settings
    this.#cache = settings === null ? null : new VerifyCache(settings.maxEntries, settings.ttlMs, settings.negativeTtlMs, settings.negativeMaxEntries)
  }

  /** The record for `keyId`, or `null`. Store failures reject with a {@link StoreError}. */
  read(keyId: string): Promise<StoredKey | null> {
    const answer = this.readNow(keyId)
    return answer instanceof Promise ? answer : Promise.resolve(answer)
  }

  /**
   * {@link VerifyReads.read}, but the answer itself when it is known at once (a cache hit, a store with
   * `getSync`): each promise avoided is a microtask hop off the hot path. Never throws; store failures
   * come back as a rejected promise with a {@link StoreError}.
   */
  readNow(keyId: string): StoredKey | null | Promise<StoredKey | null> {
    const cache = this.#cache
    if (cache === null) return this.#readStoreNow(keyId)
    this.#subscribeToChannel()
    // A missed invalidation could keep a revoked key alive for the whole ttl: read the store instead.
    return this.#lost ? this.#readStoreNow(keyId) : this.#readThroughCache(cache, keyId)
  }

  /** Drops the cached copy here and tells other instances. A failed publish never fails the change. */
  invalidate(keyId: string): void {
    this.#noteChanged(keyId)
    if (this.#cache === null) return
    this.#cache.invalidate(keyId)
    this.#settings?.channel?.publish(keyId).catch(this.#reportChannelError)
  }

  /** Stops listening to the channel. */
  async close(): Promise<void> {
    const unsubscribe = await this.#subscription?.catch(() => undefined)
    this.#subscription = undefined
    await unsubscribe?.().catch(this.#reportChannelError)
    this.#lost = false
  }

  #readStoreNow(keyId: string): StoredKey | null | Promise<StoredKey | null> {
    if (!this.#readsSync) return this.#readStore(keyId)
    try {
      return this.#store.getSync!(keyId)
    } catch (error) {
      return Promise.reject(asStoreError('get', error))
    }
  }

  async #readStore(keyId: string): Promise<StoredKey | null> {
    const store = this.#store
    try {
      if (!this.#readsForVerify) return await store.get(keyId)
      return await store.getForVerify!(keyId, this.#changed.delete(keyId) ? CHANGED : undefined)
    } catch (error) {
      throw asStoreError('get', error)
    }
  }

  #readThroughCache(cache: VerifyCache, keyId: string): StoredKey | null | Promise<StoredKey | null> {
    const now = this.#clock()
    const cached = cache.lookup(keyId, now)
    if (cached !== undefined) return cached.record
    const epoch = cache.begin()
    const read = this.#readStoreNow(keyId)
    // The entry's ttl counts from before the read, not from its answer: a slow read must not stretch the bound.
    if (!(read instanceof Promise)) {
      cache.fill(keyId, read, now, epoch)
      return read
    }
    return read.then((record) => {
      cache.fill(keyId, record, now, epoch)
      return record
    })
  }

  /**
   * Listens for other instances' changes, once, in the background; until then the ttl bounds staleness.
   * While the channel reports its subscription lost, the cache is bypassed (see {@link VerifyReads.read}).
   */
  #subscribeToChannel(): void {
    const channel = this.#settings?.channel
    if (channel === undefined || this.#subscription !== undefined) return
    const listener = (keyId: string): void => {
      this.#noteChanged(keyId)
      this.#cache?.invalidate(keyId)
    }
    // Clearing bumps the cache's epoch, so a read under way when the state changes is not kept either.
    const events = {
      onLost: () => {
        this.#lost = true
        this.#cache?.clear()
      },
      onRestored: () => {
        if (!this.#lost) return
        this.#lost = false
        this.#cache?.clear()
      },
    }
    this.#subscription = channel.subscribe(listener, events).catch((error: unknown) => {
      // A channel that could not subscribe reports nothing more: the ttl bounds staleness, as without events.
      this.#lost = false
      this.#reportChannelError(error)
      // Try again after a while, not on every verify; meanwhile the ttl bounds staleness.
      setTimeout(() => (this.#subscription = undefined), Math.min(this.#settings?.ttlMs ?? 1000, MAX_RESUBSCRIBE_DELAY_MS)).unref?.()
      return undefined
    })
  }

  #noteChanged(keyId: string): void {
    if (!this.#readsForVerify) return
    // Re-added at the end: the oldest change is the one a replica most likely has already.
    this.#changed.delete(keyId)
    this.#changed.add(keyId)
    if (this.#changed.size > MAX_CHANGED_KEYS) this.#changed.delete(this.#changed.values().next().value!)
  }

  readonly #reportChannelError = (error: unknown): void => {
    this.#settings?.onError(error)
  }
}
