/**
 * The in-memory reference store: every promise of the KeyStore contract in plain code.
 */
import {
  compareListPositions,
  matchesKeyQuery,
  type InsertResult,
  type KeyQuery,
  type KeyStore,
  type QuotaCheck,
  type StoredKey,
  type UpdateResult,
} from '../../src/store.js'
import { compareAuditPositions, matchesAuditQuery, type AuditQuery, type AuditRecord, type AuditStore } from '../../src/audit/audit-store.js'
import { applyCreditAdjustment, applyUsage } from '../../src/limits/usage-arithmetic.js'
import type { CounterState, CreditAdjustment, CreditsAdjusted, CreditState, UsageOutcome, UsageRequest, UsageStore } from '../../src/limits/usage-store.js'

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

function matches(record: StoredKey, query: KeyQuery): boolean {
  if (!matchesKeyQuery(record, query)) return false
  if (query.after === undefined) return true
  const order = compareListPositions(record, query.after)
  return query.order === 'asc' ? order > 0 : order < 0
}

/** The quota bucket of an owner: owners are counted within their tenant. */
function quotaBucket(ownerId: string, tenantId: string | null): string {
  return JSON.stringify([tenantId, ownerId])
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
export class MemoryStore implements KeyStore, UsageStore, AuditStore {
  private readonly records = new Map<string, StoredKey>()
  // Kept in ascending (at, id) order: entries almost always arrive newest last.
  private readonly auditEntries: AuditRecord[] = []
  /** Rate counter states with the instant they stop mattering; dropped by purgeUsage and by the sweep. */
  private readonly counters = new Map<string, { state: CounterState; expiresAt: number }>()
  private readonly balances = new Map<string, CreditState>()
  private writesSinceSweep = 0
  private readonly idsByOwner = new Map<string, Set<string>>()
  /** IDs per quota bucket (owner within tenant), revoked ones included. */
  private readonly idsByBucket = new Map<string, Set<string>>()

  /** Number of records held, revoked ones included. */
  get size(): number {
    return this.records.size
  }

  /**
   * What `console.log` and `util.inspect` show: the size, never the records (they hold the stored
   * hashes), so printing a KeyManager's options prints no hash. Plain fields rather than `#private`
   * ones, so the store still works through `Object.create` and proxies.
   */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `MemoryStore { size: ${this.records.size} }`
  }

  /** What `JSON.stringify` shows: the size, never the records. */
  toJSON(): {
    /** Number of records held. */
    size: number
  } {
    return { size: this.records.size }
  }

  async insert(record: StoredKey, quota: QuotaCheck | null, audit?: AuditRecord): Promise<InsertResult> {
    if (this.records.has(record.id)) return 'id_taken'
    if (quota !== null && this.countActive(quotaBucket(quota.ownerId, quota.tenantId)) >= quota.limit) return 'quota_exceeded'
    this.records.set(record.id, snapshot(record))
    this.append(audit)
    if (record.ownerId !== null) {
      addTo(this.idsByOwner, record.ownerId, record.id)
      addTo(this.idsByBucket, quotaBucket(record.ownerId, record.tenantId), record.id)
    }
    return 'inserted'
  }

  async get(id: string): Promise<StoredKey | null> {
    return this.records.get(id) ?? null
  }

  /**
   * What {@link MemoryStore.get} answers, without the promise ({@link keywarden!KeyStore.getSync | KeyStore.getSync}):
   * the stored record is already a frozen private copy, so verify can read it as it is.
   */
  getSync(id: string): StoredKey | null {
    return this.records.get(id) ?? null
  }

  async update(record: StoredKey, expectedVersion: number, audit?: AuditRecord): Promise<UpdateResult> {
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
    this.append(audit)
    return 'updated'
  }

  async delete(id: string, audit?: AuditRecord): Promise<boolean> {
    const current = this.records.get(id)
    if (current === undefined) return false
    this.records.delete(id)
    this.append(audit)
    if (current.ownerId !== null) {
      removeFrom(this.idsByOwner, current.ownerId, id)
      removeFrom(this.idsByBucket, quotaBucket(current.ownerId, current.tenantId), id)
    }
    return true
  }

  async list(query: KeyQuery): Promise<StoredKey[]> {
    const source = query.ownerId === undefined ? this.records.values() : this.recordsOf(this.idsByOwner, query.ownerId)
    const found: StoredKey[] = []
    for (const record of source) if (matches(record, query)) found.push(record)
    found.sort(query.order === 'asc' ? compareListPositions : (a, b) => compareListPositions(b, a))
    return found.slice(0, query.limit)
  }

  async touch(id: string, at: number): Promise<void> {
    const current = this.records.get(id)
    if (current === undefined || (current.lastUsedAt !== null && current.lastUsedAt >= at)) return
    this.records.set(id, Object.freeze({ ...current, lastUsedAt: at }))
  }

  async consumeUsage(request: UsageRequest): Promise<UsageOutcome> {
    const stored = request.rate.map((counter) => this.counters.get(counter.id)?.state ?? null)
    const balance = request.credits === null ? null : (this.balances.get(request.credits.id) ?? null)
    const { outcome, writes } = applyUsage(request, stored, balance)
    for (const write of writes.counters) this.counters.set(write.id, { state: write.state, expiresAt: write.expiresAt })
    if (writes.credits !== null) this.balances.set(request.credits!.id, writes.credits)
    this.sweepNow(writes.counters.length, request.now)
    return outcome
  }

  async adjustCredits(change: CreditAdjustment): Promise<CreditsAdjusted> {
    const { state, previous } = applyCreditAdjustment(change, this.balances.get(change.pool.id) ?? null)
    this.balances.set(change.pool.id, state)
    if (change.audit !== undefined) this.append({ ...change.audit, changes: { credits: { from: previous, to: state.remaining } } })
    return { previous, remaining: state.remaining }
  }

  async listAudit(query: AuditQuery): Promise<AuditRecord[]> {
    const found: AuditRecord[] = []
    for (let i = this.auditEntries.length - 1; i >= 0 && found.length < query.limit; i--) {
      const entry = this.auditEntries[i]!
      if (matchesAuditQuery(entry, query)) found.push(entry)
    }
    return found
  }

  async pruneAudit(before: number, limit: number): Promise<number> {
    let count = 0
    while (count < limit && count < this.auditEntries.length && this.auditEntries[count]!.at < before) count++
    this.auditEntries.splice(0, count)
    return count
  }

  private append(entry: AuditRecord | undefined): void {
    if (entry === undefined) return
    const frozen = deepFreeze(structuredClone(entry))
    let index = this.auditEntries.length
    while (index > 0 && compareAuditPositions(this.auditEntries[index - 1]!, frozen) > 0) index--
    this.auditEntries.splice(index, 0, frozen)
  }

  async purgeUsage(now: number): Promise<number> {
    let purged = 0
    for (const [id, entry] of this.counters) {
      if (entry.expiresAt <= now) {
        this.counters.delete(id)
        purged++
      }
    }
    return purged
  }

  /** Keeps memory bounded without a timer: every 10,000 counter writes, spent states go. */
  private sweepNow(writes: number, now: number): void {
    this.writesSinceSweep += writes
    if (this.writesSinceSweep < 10_000) return
    this.writesSinceSweep = 0
    void this.purgeUsage(now)
  }

  private *recordsOf(index: Map<string, Set<string>>, key: string): Iterable<StoredKey> {
    for (const id of index.get(key) ?? []) {
      const record = this.records.get(id)
      if (record) yield record
    }
  }

  private countActive(bucket: string): number {
    let count = 0
    for (const record of this.recordsOf(this.idsByBucket, bucket)) if (record.revokedAt === null) count++
    return count
  }
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  let ids = index.get(key)
  if (!ids) index.set(key, (ids = new Set()))
  ids.add(id)
}

function removeFrom(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key)
  ids?.delete(id)
  if (ids?.size === 0) index.delete(key)
}
