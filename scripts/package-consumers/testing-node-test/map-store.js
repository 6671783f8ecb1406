// @ts-check
// A third-party store, as its author writes one: every record in a Map, copied in and out so callers
// never share an object with it. No await between a check and its write, so each method is atomic.
import { compareListPositions, matchesKeyQuery } from 'keywarden'

/**
 * @typedef {import('keywarden').KeyStore} KeyStore
 * @typedef {import('keywarden').StoredKey} StoredKey
 * @typedef {import('keywarden').QuotaCheck} QuotaCheck
 * @typedef {import('keywarden').KeyQuery} KeyQuery
 */

/** @implements {KeyStore} */
export class MapStore {
  /** @type {Map<string, StoredKey>} */
  #records = new Map()

  /**
   * Whether `record` uses up one of the quota's slots: the owner's non-revoked keys in the tenant.
   * @param {StoredKey} record
   * @param {QuotaCheck} quota
   */
  countsTowards(record, quota) {
    return record.ownerId === quota.ownerId && record.tenantId === quota.tenantId && record.revokedAt === null
  }

  /** @param {StoredKey} record @param {QuotaCheck | null} quota @returns {Promise<import('keywarden').InsertResult>} */
  async insert(record, quota) {
    if (this.#records.has(record.id)) return 'id_taken'
    if (quota !== null && [...this.#records.values()].filter((held) => this.countsTowards(held, quota)).length >= quota.limit) {
      return 'quota_exceeded'
    }
    this.#records.set(record.id, structuredClone(record))
    return 'inserted'
  }

  /** @param {string} id */
  async get(id) {
    const record = this.#records.get(id)
    return record === undefined ? null : structuredClone(record)
  }

  /** @param {StoredKey} record @param {number} expectedVersion @returns {Promise<import('keywarden').UpdateResult>} */
  async update(record, expectedVersion) {
    const current = this.#records.get(record.id)
    if (current === undefined) return 'not_found'
    if (current.version !== expectedVersion) return 'conflict'
    // lastUsedAt belongs to touch(): an update keeps the stored one.
    this.#records.set(record.id, { ...structuredClone(record), lastUsedAt: current.lastUsedAt })
    return 'updated'
  }

  /** @param {string} id */
  async delete(id) {
    return this.#records.delete(id)
  }

  /** @param {KeyQuery} query */
  async list(query) {
    const direction = query.order === 'asc' ? 1 : -1
    const { after } = query
    return [...this.#records.values()]
      .filter((record) => matchesKeyQuery(record, query))
      .filter((record) => after === undefined || compareListPositions(record, after) * direction > 0)
      .sort((a, b) => compareListPositions(a, b) * direction)
      .slice(0, query.limit)
      .map((record) => structuredClone(record))
  }

  /** @param {string} id @param {number} at */
  async touch(id, at) {
    const record = this.#records.get(id)
    if (record !== undefined && (record.lastUsedAt === null || record.lastUsedAt < at)) this.#records.set(id, { ...record, lastUsedAt: at })
  }
}
