/**
 * The audit trail's storage contract. A store that keeps an audit trail implements {@link AuditStore}
 * and accepts an {@link AuditRecord} on each write of the {@link KeyStore} contract (`insert`,
 * `update`, `delete`) and in `adjustCredits`: the entry and the change it describes are written in
 * one atomic step, or neither is.
 */
import type { JsonValue } from '../store.js'

/**
 * What kind of party made a change.
 *
 * @example
 * ```ts
 * import type { ActorType } from 'keywarden'
 *
 * const kind: ActorType = 'user'
 * ```
 */
export type ActorType = 'user' | 'service' | 'key' | 'system'

/**
 * Who made a change: a user of your product, a service, another API key, or the system itself.
 * Your IDs, stored as given (IDs up to 256 characters).
 *
 * @example
 * ```ts
 * import type { Actor } from 'keywarden'
 *
 * const actor: Actor = { type: 'user', id: 'u_42', tenantId: 'acme' }
 * await keys.disable(keyId, { actor, reason: 'Leaked in a public repository' })
 * ```
 */
export interface Actor {
  /** The kind of party. */
  readonly type: ActorType
  /** Your ID of the user, service or key (1-256 characters). */
  readonly id: string
  /** The tenant the actor acts in, when that matters to you (1-256 characters). */
  readonly tenantId?: string
}

/**
 * Who made a change, and why: the optional last argument of every management call. Everything in it
 * is stored on the audit entry and carried by the event.
 *
 * @example
 * ```ts
 * import type { ChangeContext } from 'keywarden'
 *
 * const context: ChangeContext = { actor: { type: 'user', id: 'u_42' }, reason: 'Quarterly rotation', requestId: 'req_9f2c' }
 * await keys.update(keyId, { name: 'CI (main)' }, context)
 * ```
 */
export interface ChangeContext {
  /** Who made the change; stored as the key's `updatedBy` (and `createdBy` on create). */
  readonly actor?: Actor
  /** Why, in words for people (up to 1,000 characters). */
  readonly reason?: string
  /** Your request or trace ID, to find the entry from your own logs (up to 256 characters). */
  readonly requestId?: string
}

/**
 * What an audit entry records.
 *
 * @example
 * ```ts
 * import type { AuditAction } from 'keywarden'
 *
 * const page = await keys.audit({ action: 'revoked' satisfies AuditAction })
 * ```
 */
export type AuditAction = 'created' | 'updated' | 'enabled' | 'disabled' | 'revoked' | 'deleted' | 'rotated' | 'credits_changed'

/**
 * One field's change: its value before and after, as JSON (instants as ISO 8601 strings, absent
 * values as `null`).
 *
 * @example
 * ```ts
 * import type { FieldChange } from 'keywarden'
 *
 * const renamed: FieldChange = { from: 'CI', to: 'CI (main)' }
 * ```
 */
export interface FieldChange {
  /** The value before the change. */
  readonly from: JsonValue
  /** The value after the change. */
  readonly to: JsonValue
}

/**
 * The fields a change really changed, by name. A field set to the value it had is not listed. Never
 * holds a secret, a hash or a pepper.
 *
 * @example
 * ```ts
 * import type { AuditChanges } from 'keywarden'
 *
 * const changes: AuditChanges = { name: { from: 'CI', to: 'CI (main)' }, scopes: { from: ['read'], to: ['read', 'write'] } }
 * ```
 */
export type AuditChanges = Readonly<Record<string, FieldChange>>

/**
 * An audit entry as a store keeps it: instants in epoch milliseconds. Entries are written only with
 * the change they describe and outlive the key they are about.
 *
 * @example
 * ```ts
 * import type { AuditRecord } from 'keywarden'
 *
 * const entry: AuditRecord = {
 *   id: '01JD5Q9W3ZK8H2M4N6P8R0T2V4', at: Date.now(), action: 'disabled', keyId: 'Ab3dEf6hIj9kLm2n',
 *   ownerId: 'u_7', tenantId: 'acme', actor: { type: 'user', id: 'u_42' }, reason: 'Leaked', requestId: null,
 *   changes: { enabled: { from: true, to: false } },
 * }
 * ```
 */
export interface AuditRecord {
  /**
   * Unique, ordered with `at`: entries sort newest first by `(at, id)` descending, IDs in binary
   * (UTF-16 code unit) order. Up to 64 characters.
   */
  readonly id: string
  /** When the change happened, epoch ms. */
  readonly at: number
  /** What happened. */
  readonly action: AuditAction
  /** The key changed; `null` for a credit change of an owner's or tenant's shared pool. */
  readonly keyId: string | null
  /** The key's (or pool's) owner; `null` when none. */
  readonly ownerId: string | null
  /** The key's (or pool's) tenant; `null` when none. */
  readonly tenantId: string | null
  /** Who made the change; `null` when the caller did not say. */
  readonly actor: Actor | null
  /** Why; `null` when the caller did not say. */
  readonly reason: string | null
  /** The caller's request ID; `null` when none. */
  readonly requestId: string | null
  /** The fields that really changed. */
  readonly changes: AuditChanges
}

/**
 * A position in the audit order (newest first), used as a keyset cursor.
 *
 * @example
 * ```ts
 * import type { AuditPosition, AuditRecord } from 'keywarden'
 *
 * declare const last: AuditRecord
 * const before: AuditPosition = { at: last.at, id: last.id }
 * ```
 */
export interface AuditPosition {
  /** `at` of the last entry seen, epoch ms. */
  readonly at: number
  /** `id` of the last entry seen; breaks ties between equal `at`. */
  readonly id: string
}

/**
 * Filters for {@link AuditStore.listAudit}; every filter that is set must match (AND). Results are
 * ordered by `(at, id)` descending.
 *
 * @example
 * ```ts
 * import type { AuditQuery, AuditStore } from 'keywarden'
 *
 * declare const auditStore: AuditStore
 * const query: AuditQuery = { keyId: 'Ab3dEf6hIj9kLm2n', limit: 50 }
 * const history = await auditStore.listAudit(query)
 * ```
 */
export interface AuditQuery {
  /** Only entries about this key. */
  readonly keyId?: string
  /** Only entries whose `tenantId` is this one. */
  readonly tenantId?: string
  /** Only entries whose `ownerId` is this one. */
  readonly ownerId?: string
  /** Only entries whose actor has this `id` (of any actor type). */
  readonly actorId?: string
  /** Only entries of this action. */
  readonly action?: AuditAction
  /** Only entries with `at >= from`, epoch ms. */
  readonly from?: number
  /** Only entries with `at < to`, epoch ms. */
  readonly to?: number
  /** Only entries strictly after this position in the order (older than it). */
  readonly before?: AuditPosition
  /** Maximum number of entries to return, at least 1. */
  readonly limit: number
}

/**
 * What a store that keeps an audit trail adds to the {@link KeyStore} contract. Such a store also
 * honours the `audit` argument of `insert`, `update` and `delete` (and {@link CreditAdjustment.audit}):
 * the entry is written in the same atomic step as the change, and only when the change happens
 * (`'inserted'`, `'updated'`, a delete that found the record, any credit adjustment). A failure
 * anywhere in that step writes neither. Entries are never changed, and `delete` leaves them in place.
 *
 * @example
 * ```ts
 * import { isAuditStore } from 'keywarden'
 * import { MemoryStore } from 'keywarden/adapters/memory'
 *
 * const store = new MemoryStore()
 * if (isAuditStore(store)) console.info(await store.listAudit({ limit: 10 }))
 * ```
 */
export interface AuditStore {
  /** Entries matching `query`, newest first, at most `query.limit`. */
  listAudit(query: AuditQuery): Promise<AuditRecord[]>
  /**
   * Removes up to `limit` entries with `at < before`, oldest first (ascending `(at, id)`), and returns how many it removed;
   * fewer than `limit` means none older remain. Each call is bounded, so pruning never holds a long lock.
   */
  pruneAudit(before: number, limit: number): Promise<number>
}

/**
 * Whether a store keeps an audit trail ({@link AuditStore}).
 *
 * @example
 * ```ts
 * import { isAuditStore } from 'keywarden'
 *
 * if (!isAuditStore(store)) console.warn('this store keeps no audit trail')
 * ```
 */
export function isAuditStore(store: unknown): store is AuditStore {
  const candidate = store as Partial<AuditStore> | null
  return typeof candidate?.listAudit === 'function' && typeof candidate?.pruneAudit === 'function'
}

/**
 * Whether an entry passes every filter of `query` (including `before`; not `limit`): the filtering rules of
 * {@link AuditStore.listAudit} in one place, for stores that filter in code.
 *
 * @example
 * ```ts
 * import { matchesAuditQuery, type AuditRecord } from 'keywarden'
 *
 * declare const entries: AuditRecord[]
 * const revocations = entries.filter((entry) => matchesAuditQuery(entry, { action: 'revoked', limit: 10 }))
 * ```
 */
export function matchesAuditQuery(entry: AuditRecord, query: AuditQuery): boolean {
  if (query.keyId !== undefined && entry.keyId !== query.keyId) return false
  if (query.tenantId !== undefined && entry.tenantId !== query.tenantId) return false
  if (query.ownerId !== undefined && entry.ownerId !== query.ownerId) return false
  if (query.actorId !== undefined && entry.actor?.id !== query.actorId) return false
  if (query.action !== undefined && entry.action !== query.action) return false
  if (query.from !== undefined && entry.at < query.from) return false
  if (query.to !== undefined && entry.at >= query.to) return false
  if (query.before !== undefined && compareAuditPositions(entry, query.before) >= 0) return false
  return true
}

/**
 * Compares two audit positions in ascending `(at, id)` order (IDs in binary order); the audit trail
 * lists in the reverse of this order. Negative when `a` is older.
 *
 * @example
 * ```ts
 * import { compareAuditPositions, type AuditRecord } from 'keywarden'
 *
 * declare const entries: AuditRecord[]
 * entries.sort((a, b) => compareAuditPositions(b, a)) // newest first, as listAudit returns them
 * ```
 */
export function compareAuditPositions(a: AuditPosition, b: AuditPosition): number {
  if (a.at !== b.at) return a.at - b.at
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}
