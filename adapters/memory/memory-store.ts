import { keyStatus, type InsertResult, type KeyQuery, type KeyStore, type QuotaCheck, type StoredKey, type UpdateResult } from '../../src/store.js'

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const item of Object.values(value)) deepFreeze(item)
  }
  return value
}

/** A private, immutable copy: callers can neither change what is stored nor be changed by it. */
function snapshot(record: StoredKey): StoredKey {
  return deepFreeze(structuredClone(record))
}

function comparePosition(a: Pick<StoredKey, 'createdAt' | 'id'>, b: Pick<StoredKey, 'createdAt' | 'id'>): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

function matches(record: StoredKey, query: KeyQuery): boolean {
  if (query.ownerId !== undefined && record.ownerId !== query.ownerId) return false
  if (query.tenantId !== undefined && record.tenantId !== query.tenantId) return false
  if (query.environment !== undefined && record.environment !== query.environment) return false
  if (query.type !== undefined && record.type !== query.type) return false
  if (query.status !== undefined && keyStatus(record, query.now) !== query.status) return false
  if (query.expiresWithin !== undefined) {
    const { from, to } = query.expiresWithin
    if (record.revokedAt !== null || record.expiresAt === null || record.expiresAt <= from || record.expiresAt > to) return false
  }
  if (query.after !== undefined) {
    const order = comparePosition(record, query.after)
    if (query.order === 'asc' ? order <= 0 : order >= 0) return false
  }
  return true
}

/**
 * The reference {@link KeyStore}: every promise of the contract in plain code, in this process's memory.
 * Each method runs to completion without awaiting, so each is atomic. Records are stored as frozen
 * copies. Nothing survives a restart: use it for tests, demos and single-process tools.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { MemoryStore } from 'keywarden/adapters/memory'
 *
 * const keys = new KeyManager({ store: new MemoryStore() })
 * ```
 */
export class MemoryStore implements KeyStore {
  private readonly records = new Map<string, StoredKey>()
  private readonly idsByOwner = new Map<string, Set<string>>()

  /** Number of records held, revoked ones included. */
  get size(): number {
    return this.records.size
  }

  async insert(record: StoredKey, quota: QuotaCheck | null): Promise<InsertResult> {
    if (this.records.has(record.id)) return 'id_taken'
    if (quota !== null && this.countActiveForOwner(quota.ownerId) >= quota.limit) return 'quota_exceeded'
    this.records.set(record.id, snapshot(record))
    if (record.ownerId !== null) {
      let ids = this.idsByOwner.get(record.ownerId)
      if (!ids) this.idsByOwner.set(record.ownerId, (ids = new Set()))
      ids.add(record.id)
    }
    return 'inserted'
  }

  async get(id: string): Promise<StoredKey | null> {
    return this.records.get(id) ?? null
  }

  async update(record: StoredKey, expectedVersion: number): Promise<UpdateResult> {
    const current = this.records.get(record.id)
    if (current === undefined) return 'not_found'
    if (current.version !== expectedVersion) return 'conflict'
    // Owner, tenant, environment and creation time are immutable; lastUsedAt belongs to touch().
    this.records.set(
      record.id,
      snapshot({
        ...record,
        ownerId: current.ownerId,
        tenantId: current.tenantId,
        environment: current.environment,
        createdAt: current.createdAt,
        lastUsedAt: current.lastUsedAt,
      }),
    )
    return 'updated'
  }

  async delete(id: string): Promise<boolean> {
    const current = this.records.get(id)
    if (current === undefined) return false
    this.records.delete(id)
    if (current.ownerId !== null) {
      const ids = this.idsByOwner.get(current.ownerId)
      ids?.delete(id)
      if (ids?.size === 0) this.idsByOwner.delete(current.ownerId)
    }
    return true
  }

  async list(query: KeyQuery): Promise<StoredKey[]> {
    const source = query.ownerId === undefined ? this.records.values() : this.ownerRecords(query.ownerId)
    const found: StoredKey[] = []
    for (const record of source) if (matches(record, query)) found.push(record)
    found.sort(query.order === 'asc' ? comparePosition : (a, b) => comparePosition(b, a))
    return found.slice(0, query.limit)
  }

  async touch(id: string, at: number): Promise<void> {
    const current = this.records.get(id)
    if (current === undefined || (current.lastUsedAt !== null && current.lastUsedAt >= at)) return
    this.records.set(id, Object.freeze({ ...current, lastUsedAt: at }))
  }

  private *ownerRecords(ownerId: string): Iterable<StoredKey> {
    for (const id of this.idsByOwner.get(ownerId) ?? []) {
      const record = this.records.get(id)
      if (record) yield record
    }
  }

  private countActiveForOwner(ownerId: string): number {
    let count = 0
    for (const record of this.ownerRecords(ownerId)) if (record.revokedAt === null) count++
    return count
  }
}
