/**
 * The storage contract. Every adapter (memory, Redis, SQL) implements {@link KeyStore}; the shared
 * conformance suite (`keywarden/testing`) proves each one keeps the promises written here.
 *
 * Stores keep and fetch records. They never decide policy and never read the clock: every instant they
 * need arrives as an argument, in epoch milliseconds.
 */
import type { Actor, AuditRecord, AuditStore } from './audit/audit-store.js'

/**
 * A JSON value, as accepted in key metadata.
 *
 * @example
 * ```ts
 * import type { JsonValue } from 'keywarden'
 *
 * const plan: JsonValue = { name: 'pro', seats: 5, features: ['export'], trial: false }
 * ```
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/**
 * A JSON object, as accepted in key metadata.
 *
 * @example
 * ```ts
 * import type { JsonObject } from 'keywarden'
 *
 * const metadata: JsonObject = { createdBy: 'admin@example.com', ticket: 'OPS-42' }
 * await keys.create({ name: 'CI', environment: 'live', metadata })
 * ```
 */
export type JsonObject = { [key: string]: JsonValue }

/**
 * Where a key stands at a given instant, in order of precedence:
 * `revoked` (revokedAt set), `expired` (expiresAt <= now), `disabled` (enabled false), `active`.
 *
 * @example
 * ```ts
 * import type { KeyStatus } from 'keywarden'
 *
 * const key = await keys.get(keyId)
 * const status: KeyStatus | undefined = key ? keys.statusOf(key) : undefined
 * const disabledKeys = await keys.list({ status: 'disabled' })
 * ```
 */
export type KeyStatus = 'active' | 'disabled' | 'expired' | 'revoked'

/**
 * One key as stored. All instants are epoch milliseconds; `null` means "not set".
 * `hash` and `previousHash` are self-describing keyed hashes (see the security docs); a store never
 * sees a secret. Adapters map it to and from their own rows; only a custom {@link KeyStore} needs it.
 *
 * @example
 * ```ts
 * import type { StoredKey } from 'keywarden'
 *
 * // A custom store's get(), over a database that keeps scopes as JSON text:
 * type Row = Omit<StoredKey, 'scopes'> & { scopes: string }
 * declare const db: { findOne(id: string): Promise<Row | undefined> }
 *
 * async function get(id: string): Promise<StoredKey | null> {
 *   const row = await db.findOne(id)
 *   return row === undefined ? null : { ...row, scopes: JSON.parse(row.scopes) as string[] }
 * }
 * ```
 */
export interface StoredKey {
  /**
   * Public key ID, unique; the lookup key of every read. Immutable. IDs are case-sensitive and compare
   * in binary (UTF-16 code unit) order, which for base62 IDs is digits, then upper, then lower case:
   * SQL stores need a binary collation for this column.
   */
  readonly id: string
  /** Human-readable label. */
  readonly name: string
  /** Free text; `null` when none. */
  readonly description: string | null
  /** Immutable. Quotas count non-revoked keys per owner within its tenant. */
  readonly ownerId: string | null
  /** Immutable. */
  readonly tenantId: string | null
  /** Immutable: a key never moves between environments. */
  readonly environment: string
  /** Free label, filterable; `null` when none. */
  readonly type: string | null
  /** Scopes granted directly. */
  readonly scopes: readonly string[]
  /** Role names granted; resolved by the KeyManager, not the store. */
  readonly roles: readonly string[]
  /** Group names granted; resolved by the KeyManager, not the store. */
  readonly groups: readonly string[]
  /** The caller's JSON object, stored and returned as is. */
  readonly metadata: Readonly<JsonObject>
  /** First characters of the current secret, for display. */
  readonly start: string
  /** Keyed hash of the current secret. */
  readonly hash: string
  /** Keyed hash of the secret replaced by the last rotation, while its grace period runs; else `null`. */
  readonly previousHash: string | null
  /** End of the previous secret's grace period (exclusive), epoch ms; `null` when there is none. */
  readonly previousHashExpiresAt: number | null
  /** Creation instant, epoch ms; with `id`, the list order. Immutable. */
  readonly createdAt: number
  /** Instant of the last management change, epoch ms. */
  readonly updatedAt: number
  /** Valid while `now < expiresAt`; `null` never expires. */
  readonly expiresAt: number | null
  /** Written only by {@link KeyStore.touch}; {@link KeyStore.update} leaves it as it is. */
  readonly lastUsedAt: number | null
  /** `false` while disabled. */
  readonly enabled: boolean
  /** Revocation instant, epoch ms; `null` when not revoked. Once set, never cleared. */
  readonly revokedAt: number | null
  /** The `expiresAt` value the owner was last told about, so each expiry is announced once. */
  readonly expiryNoticeFor: number | null
  /** Incremented by every update; the compare-and-set token of {@link KeyStore.update}. Starts at 1. */
  readonly version: number
  /**
   * Name of the usage policy (rate limits, credits) the key follows, resolved from the configuration
   * at every verify; `null` (or absent, in records written by 0.1.0) for the configured default.
   * Up to 64 characters. Mutable.
   */
  readonly policy?: string | null
  /**
   * Whether the key holds a credit balance of its own (given at creation, or set by `setCredits` /
   * `addCredits`), charged at verify even when its policy grants no credits. Absent means `false`.
   * Mutable.
   */
  readonly hasCredits?: boolean
  /** Who created the key; `null` (or absent, in records written by 0.1.0) when unknown. Immutable. */
  readonly createdBy?: Actor | null
  /** Who made the last management change (the creator until then); `null` or absent when unknown. */
  readonly updatedBy?: Actor | null
  /** Why the key was disabled, while it is; `null` or absent otherwise. Up to 1,000 characters. */
  readonly disabledReason?: string | null
  /** Who disabled the key, while it is disabled; `null` or absent otherwise. */
  readonly disabledBy?: Actor | null
}

/**
 * A position in the list order, used as a keyset cursor.
 *
 * @example
 * ```ts
 * import type { KeyQuery, ListPosition } from 'keywarden'
 *
 * const query: KeyQuery = { ownerId: 'u1', now: Date.now(), order: 'asc', limit: 50 }
 * const batch = await store.list(query)
 * const last = batch.at(-1)
 * if (last) {
 *   const after: ListPosition = { createdAt: last.createdAt, id: last.id }
 *   const next = await store.list({ ...query, after })
 * }
 * ```
 */
export interface ListPosition {
  /** `createdAt` of the last record seen, epoch ms. */
  readonly createdAt: number
  /** `id` of the last record seen; breaks ties between equal `createdAt`. */
  readonly id: string
}

/**
 * Filters for {@link KeyStore.list}. Every filter that is set must match (AND).
 * Results are ordered by `(createdAt, id)`, ascending or descending, IDs in binary order.
 *
 * @example
 * ```ts
 * import type { KeyQuery } from 'keywarden'
 *
 * const query: KeyQuery = { ownerId: 'u1', status: 'active', now: Date.now(), order: 'asc', limit: 50 }
 * const active = await store.list(query)
 * ```
 */
export interface KeyQuery {
  /** Only records with this `ownerId`. */
  readonly ownerId?: string
  /** Only records with this `tenantId`. */
  readonly tenantId?: string
  /** Only records in this environment. */
  readonly environment?: string
  /** Only records with this `type`. */
  readonly type?: string
  /** Keys whose {@link KeyStatus} at `now` is this one. */
  readonly status?: KeyStatus
  /** Keys not revoked with `from < expiresAt <= to` (epoch ms). */
  readonly expiresWithin?: {
    /** Exclusive lower bound of `expiresAt`, epoch ms. */
    readonly from: number
    /** Inclusive upper bound of `expiresAt`, epoch ms. */
    readonly to: number
  }
  /** The instant `status` is judged at, epoch ms. */
  readonly now: number
  /** `'asc'`: oldest first; `'desc'`: newest first. */
  readonly order: 'asc' | 'desc'
  /** Return only records strictly after this position in `order`. */
  readonly after?: ListPosition
  /** Maximum number of records to return, at least 1. */
  readonly limit: number
}

/**
 * A quota to enforce atomically with an insert. Keys are counted per owner *within a tenant*: the same
 * `ownerId` in two tenants is two owners (user IDs of different tenants may collide), and a `null`
 * tenant is a tenant of its own.
 *
 * @example
 * ```ts
 * import type { QuotaCheck, StoredKey } from 'keywarden'
 *
 * declare const record: StoredKey // a new record of owner u1 in tenant t1
 * const quota: QuotaCheck = { ownerId: 'u1', tenantId: 't1', limit: 2 }
 * const outcome = await store.insert(record, quota) // 'quota_exceeded' if u1 holds 2 in t1 already
 * ```
 */
export interface QuotaCheck {
  /** The owner whose non-revoked keys are counted; always the new record's `ownerId`. */
  readonly ownerId: string
  /**
   * The tenant the owner is counted in; always the new record's `tenantId`. Only keys with this exact
   * `tenantId` count (`null` counts the owner's keys without a tenant).
   */
  readonly tenantId: string | null
  /** The owner may hold at most this many non-revoked keys in the tenant, counting the new one. */
  readonly limit: number
}

/**
 * Outcome of {@link KeyStore.insert}.
 *
 * @example
 * ```ts
 * import { randomUUID } from 'node:crypto'
 * import type { InsertResult, StoredKey } from 'keywarden'
 *
 * declare let record: StoredKey
 * const outcome: InsertResult = await store.insert(record, null)
 * if (outcome === 'id_taken') record = { ...record, id: randomUUID() } // then try again
 * ```
 */
export type InsertResult = 'inserted' | 'quota_exceeded' | 'id_taken'

/**
 * Outcome of {@link KeyStore.update}.
 *
 * @example
 * ```ts
 * import type { UpdateResult } from 'keywarden'
 *
 * const current = await store.get(keyId)
 * if (!current) throw new Error('no such key')
 * const outcome: UpdateResult = await store.update({ ...current, name: 'new', version: current.version + 1 }, current.version)
 * if (outcome === 'conflict') {
 *   // someone else changed it first: read it again and retry
 * }
 * ```
 */
export type UpdateResult = 'updated' | 'not_found' | 'conflict'

/**
 * The contract every storage adapter implements. Methods reject only for store failures
 * (connection lost, timeout); expected outcomes are return values.
 *
 * @example
 * ```ts
 * import { KeyManager, type KeyQuery, type KeyStore, type QuotaCheck, type StoredKey } from 'keywarden'
 * import { MemoryStore } from 'keywarden/adapters/memory'
 *
 * // A store that logs every insert and hands everything to another store.
 * class LoggingStore implements KeyStore {
 *   constructor(private readonly inner: KeyStore) {}
 *   insert(record: StoredKey, quota: QuotaCheck | null) {
 *     console.info('insert', record.id)
 *     return this.inner.insert(record, quota)
 *   }
 *   get(id: string) { return this.inner.get(id) }
 *   update(record: StoredKey, expectedVersion: number) { return this.inner.update(record, expectedVersion) }
 *   delete(id: string) { return this.inner.delete(id) }
 *   list(query: KeyQuery) { return this.inner.list(query) }
 *   touch(id: string, at: number) { return this.inner.touch(id, at) }
 * }
 *
 * const keys = new KeyManager({ store: new LoggingStore(new MemoryStore()) })
 * ```
 */
export interface KeyStore {
  /**
   * Inserts a new record. Atomic: when `quota` is given, counting the owner's non-revoked keys in the
   * tenant (`ownerId` and `tenantId` both equal) and inserting happen as one step, so 50 concurrent
   * inserts against a limit of 2 insert exactly 2. `quota.ownerId` and `quota.tenantId` always equal
   * the record's. Returns `'id_taken'` (and writes nothing) when a record with this ID exists; that
   * check comes before the quota check. A failed insert writes nothing.
   *
   * An {@link AuditStore} also writes `audit` in the same atomic step, only when it returns
   * `'inserted'`; other stores ignore it.
   */
  insert(record: StoredKey, quota: QuotaCheck | null, audit?: AuditRecord): Promise<InsertResult>

  /** The record with this ID, or `null`. */
  get(id: string): Promise<StoredKey | null>

  /**
   * Optional: the read `verify` makes instead of {@link KeyStore.get}, for a store that can answer it
   * from somewhere cheaper than where writes go (`PostgresStore` with a `readPool` on a read replica).
   * The answer may be an older version of the record (or `null` for a key just created), but only as
   * much older as the store documents and bounds, and never older than a write of this key that the
   * store itself completed before the call. Management reads (read, then compare-and-set) always use
   * `get`; without this method, verify does too.
   *
   * `options.changed`: the caller has just learned that this key changed (its own write, or an
   * invalidation message from another instance). The store answers as `get` does, and keeps doing so
   * for this key until its cheaper source has caught up with the moment of the call.
   */
  getForVerify?(id: string, options?: { readonly changed?: boolean }): Promise<StoredKey | null>

  /**
   * Optional: exactly what {@link KeyStore.get} would answer now, returned synchronously instead of as a
   * promise, for a store whose reads never wait on I/O (`MemoryStore`; `SqliteStore`, because
   * better-sqlite3 runs every statement synchronously). Verify reads through it instead of `get` when
   * the store has no {@link KeyStore.getForVerify} (the more specific read), so a valid key costs no
   * promise hop before its answer. Never older than `get`, and as isolated from the caller as `get`'s
   * answer. A store failure is thrown, not returned; the KeyManager reports it as a
   * {@link keywarden!StoreError | StoreError}, as it does for `get`. (A test double that breaks `get`
   * to simulate an outage must break `getSync` too.)
   *
   * @example
   * ```ts
   * import type { KeyStore, StoredKey } from 'keywarden'
   *
   * // A custom store over an in-process map answers verify without waiting.
   * declare const records: Map<string, StoredKey>
   * const partial: Pick<KeyStore, 'get' | 'getSync'> = {
   *   getSync: (id) => records.get(id) ?? null,
   *   get: async (id) => records.get(id) ?? null,
   * }
   * ```
   */
  getSync?(id: string): StoredKey | null

  /**
   * Compare-and-set: replaces the record whose ID is `record.id` only if its stored `version` equals
   * `expectedVersion` (the caller sets `record.version` to `expectedVersion + 1`). Atomic. Keeps the
   * stored `lastUsedAt`. Never re-creates a deleted record: returns `'not_found'` instead. The
   * KeyManager never changes the immutable fields (`ownerId`, `tenantId`, `environment`, `createdAt`);
   * a store may keep its stored values for them.
   *
   * An {@link AuditStore} also writes `audit` in the same atomic step, only when it returns
   * `'updated'`; other stores ignore it.
   */
  update(record: StoredKey, expectedVersion: number, audit?: AuditRecord): Promise<UpdateResult>

  /**
   * Removes the record. Returns whether one existed. An {@link AuditStore} also writes `audit` in the
   * same atomic step when one existed, and keeps the key's earlier entries; other stores ignore it.
   */
  delete(id: string, audit?: AuditRecord): Promise<boolean>

  /** Records matching `query`, in the order `query.order`, at most `query.limit`. */
  list(query: KeyQuery): Promise<StoredKey[]>

  /**
   * Raises `lastUsedAt` to `at` (never lowers it), without touching `version` or `updatedAt`, so it
   * never conflicts with management updates. Does nothing when the record does not exist.
   */
  touch(id: string, at: number): Promise<void>

  /** Releases resources the store owns (not clients passed in by the caller). Optional. */
  close?(): Promise<void>
}

/**
 * The status of a stored key at `now`. Stores use it to filter, the KeyManager to decide.
 *
 * @example
 * ```ts
 * import { keyStatus } from 'keywarden'
 *
 * keyStatus({ revokedAt: null, expiresAt: null, enabled: true }, Date.now()) // 'active'
 * keyStatus({ revokedAt: null, expiresAt: Date.now() - 1, enabled: true }, Date.now()) // 'expired'
 * ```
 */
export function keyStatus(record: Pick<StoredKey, 'revokedAt' | 'expiresAt' | 'enabled'>, now: number): KeyStatus {
  if (record.revokedAt !== null) return 'revoked'
  if (record.expiresAt !== null && record.expiresAt <= now) return 'expired'
  return record.enabled ? 'active' : 'disabled'
}

/**
 * Whether `record` passes every filter of `query` (owner, tenant, environment, type, status at
 * `query.now`, expiry window): the filtering rules of {@link KeyStore.list} in one place, for stores
 * that filter in code. Position (`after`), order and `limit` are not checked here.
 *
 * @example
 * ```ts
 * import { matchesKeyQuery, type KeyQuery, type StoredKey } from 'keywarden'
 *
 * declare const records: StoredKey[] // everything a simple store holds
 * const query: KeyQuery = { ownerId: 'u1', status: 'active', now: Date.now(), order: 'asc', limit: 50 }
 * const matching = records.filter((record) => matchesKeyQuery(record, query))
 * ```
 */
export function matchesKeyQuery(record: StoredKey, query: KeyQuery): boolean {
  if (query.ownerId !== undefined && record.ownerId !== query.ownerId) return false
  if (query.tenantId !== undefined && record.tenantId !== query.tenantId) return false
  if (query.environment !== undefined && record.environment !== query.environment) return false
  if (query.type !== undefined && record.type !== query.type) return false
  if (query.status !== undefined && keyStatus(record, query.now) !== query.status) return false
  if (query.expiresWithin !== undefined) {
    const { from, to } = query.expiresWithin
    if (record.revokedAt !== null || record.expiresAt === null || record.expiresAt <= from || record.expiresAt > to) return false
  }
  return true
}

/**
 * Compares two list positions in the contract's order: `createdAt`, then `id` in binary (UTF-16 code
 * unit) order. Negative when `a` comes first.
 *
 * @example
 * ```ts
 * import { compareListPositions, type StoredKey } from 'keywarden'
 *
 * declare const records: StoredKey[]
 * records.sort(compareListPositions) // oldest first, as list({ order: 'asc' }) returns them
 * ```
 */
export function compareListPositions(a: ListPosition, b: ListPosition): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}
