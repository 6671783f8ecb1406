/**
 * Expiry notices sent once per key and expiry date, however often and from however many processes
 * `notifyExpiring` runs: each notice is claimed on the record (compare-and-set) before the host's
 * `notify` is called, and released again if `notify` fails.
 */
import { KeyNotFoundError } from '../errors.js'
import type { KeyQuery, KeyStore, StoredKey } from '../store.js'
import { callStore } from '../store-failure.js'
import type { ApiKey } from '../types.js'
import type { CompareAndSet } from './compare-and-set.js'

const BATCH = 100

/** What one run did: the keys whose owners were told, and those whose `notify` threw. */
export interface NoticeRun {
  readonly notified: ApiKey[]
  readonly failed: { key: ApiKey; error: unknown }[]
}

export class ExpiryNotices {
  constructor(
    private readonly store: KeyStore,
    private readonly records: CompareAndSet,
    private readonly project: (record: StoredKey) => ApiKey,
  ) {}

  /**
   * Offers every key matching `query` (which must have `expiresWithin`) to `notify`, once per expiry
   * date; `onNotified` runs after each notice that went out.
   */
  async run(
    query: Omit<KeyQuery, 'limit' | 'after' | 'order'> & { readonly expiresWithin: { readonly from: number; readonly to: number } },
    notify: (key: ApiKey) => void | Promise<void>,
    onNotified: (key: ApiKey) => void,
  ): Promise<NoticeRun> {
    const notified: ApiKey[] = []
    const failed: { key: ApiKey; error: unknown }[] = []
    const batchQuery: KeyQuery = { ...query, order: 'asc', limit: BATCH }
    let after: KeyQuery['after']
    for (;;) {
      const batch = await callStore('list', () => this.store.list({ ...batchQuery, after }))
      for (const candidate of batch) {
        if (candidate.expiryNoticeFor === candidate.expiresAt) continue
        const claimed = await this.#claim(candidate.id, query.expiresWithin)
        if (claimed === null) continue
        const key = this.project(claimed)
        try {
          await notify(key)
        } catch (error) {
          await this.#release(claimed)
          failed.push({ key, error })
          continue
        }
        notified.push(key)
        onNotified(key)
      }
      if (batch.length < BATCH) break
      const last = batch[batch.length - 1]!
      after = { createdAt: last.createdAt, id: last.id }
    }
    return { notified, failed }
  }

  async #claim(id: string, window: { readonly from: number; readonly to: number }): Promise<StoredKey | null> {
    try {
      const { after, changed } = await this.records.apply(
        id,
        (current) => {
          const due =
            current.revokedAt === null &&
            current.expiresAt !== null &&
            current.expiresAt > window.from &&
            current.expiresAt <= window.to &&
            current.expiryNoticeFor !== current.expiresAt
          return due ? { ...current, expiryNoticeFor: current.expiresAt } : current
        },
        { touchUpdatedAt: false },
      )
      return changed ? after : null
    } catch (error) {
      if (error instanceof KeyNotFoundError) return null
      throw error
    }
  }

  async #release(claimed: StoredKey): Promise<void> {
    try {
      await this.records.apply(
        claimed.id,
        (current) => (current.expiryNoticeFor === claimed.expiryNoticeFor ? { ...current, expiryNoticeFor: null } : current),
        { touchUpdatedAt: false },
      )
    } catch (error) {
      if (!(error instanceof KeyNotFoundError)) throw error
    }
  }
}
