/**
 * Records of limited keys that verified recently, so their next verify can read and charge in one
 * guarded round trip. Not a cache of answers: the store re-checks version, state and hash each time.
 */
import type { UsageStore } from '../limits/usage-store.js'
import type { KeyStore, StoredKey } from '../store.js'

/** How many records are kept at most; the least recently verified go first. */
const MAX_RECENT = 10_000

/** The one-round-trip path's parts: the store that reads and charges at once, and the keys it knows. */
export interface OneTrip {
  readonly store: UsageStore
  readonly recent: RecentKeys
}

/**
 * The one-round-trip path, when it pays: the key store also keeps the counters and can read and charge
 * at once, and no verification cache makes the read local anyway.
 */
export function oneTripFor(store: KeyStore, counters: UsageStore | null, cached: boolean): OneTrip | null {
  if (cached || counters === null || (counters as unknown) !== store || typeof counters.consumeIfCurrent !== 'function') return null
  return { store: counters, recent: new RecentKeys() }
}

export class RecentKeys {
  readonly #records = new Map<string, StoredKey>()

  /** The record last seen for `keyId`, marking it recently used. */
  get(keyId: string): StoredKey | undefined {
    const record = this.#records.get(keyId)
    if (record !== undefined) {
      this.#records.delete(keyId)
      this.#records.set(keyId, record)
    }
    return record
  }

  remember(record: StoredKey): void {
    this.#records.delete(record.id)
    this.#records.set(record.id, record)
    if (this.#records.size > MAX_RECENT) this.#records.delete(this.#records.keys().next().value!)
  }

  forget(keyId: string): void {
    this.#records.delete(keyId)
  }
}
