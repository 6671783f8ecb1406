/**
 * The audit trail as the KeyManager keeps it: builds the entry each change writes (handed to the store
 * with the change, so both land in one atomic step), and reads and prunes the trail.
 */
import * as z from 'zod/mini'
import { isAuditStore, type AuditAction, type AuditChanges, type AuditRecord, type AuditStore } from '../audit/audit-store.js'
import type { ResolvedContext } from '../audit/context.js'
import { generateKeyId } from '../crypto/random.js'
import { ConfigError } from '../errors.js'
import type { KeyStore, StoredKey } from '../store.js'
import { callStore } from '../store-failure.js'
import { dateSchema, identifierSchema, parseInput } from '../validation.js'
import type { CursorBinding, Paging } from './paging.js'

/**
 * One entry of the audit trail: who did what to which key, when, why, and what really changed.
 *
 * @example
 * ```ts
 * import type { AuditEntry } from 'keywarden'
 *
 * const { items } = await keys.audit({ keyId })
 * const line = (entry: AuditEntry) => `${entry.at.toISOString()} ${entry.actor?.id ?? 'unknown'} ${entry.action} ${Object.keys(entry.changes).join(', ')}`
 * console.info(items.map(line))
 * ```
 */
export interface AuditEntry extends Omit<AuditRecord, 'at'> {
  /** When the change happened. */
  readonly at: Date
}

/**
 * Filters for {@link KeyManager.audit}; every filter given must match.
 *
 * @example
 * ```ts
 * import type { AuditInput } from 'keywarden'
 *
 * const input: AuditInput = { tenantId: 'acme', action: 'disabled', from: new Date('2026-01-01'), limit: 20 }
 * const { items, nextCursor } = await keys.audit(input)
 * ```
 */
export interface AuditInput {
  /** Only entries about this key (including after it was deleted). */
  keyId?: string
  /** Only entries of this tenant's keys and pools. */
  tenantId?: string
  /** Only entries of this owner's keys and pools. */
  ownerId?: string
  /** Only changes made by this actor (any actor type). */
  actorId?: string
  /** Only entries of this action. */
  action?: AuditAction
  /** Only entries at or after this instant. */
  from?: Date
  /** Only entries before this instant. */
  to?: Date
  /** Page size, 1-1000. Default 50. */
  limit?: number
  /** `nextCursor` of the previous page, with the same filters. */
  cursor?: string | null
}

/**
 * One page of the audit trail, newest first.
 *
 * @example
 * ```ts
 * import type { AuditPage } from 'keywarden'
 *
 * let page: AuditPage = await keys.audit({ keyId })
 * while (page.nextCursor) page = await keys.audit({ keyId, cursor: page.nextCursor })
 * ```
 */
export interface AuditPage {
  /** The entries, newest first. */
  readonly items: readonly AuditEntry[]
  /** Pass as `cursor` for the next page; `null` on the last page. */
  readonly nextCursor: string | null
}

/**
 * What {@link KeyManager.pruneAudit} removes.
 *
 * @example
 * ```ts
 * import type { PruneAuditInput } from 'keywarden'
 *
 * const input: PruneAuditInput = { before: new Date(Date.now() - 400 * 24 * 60 * 60 * 1000) }
 * const removed = await keys.pruneAudit(input)
 * ```
 */
export interface PruneAuditInput {
  /** Entries older than this instant are removed. */
  before: Date
  /** Entries removed per store call, 1-10,000 (default 1,000): each call holds its locks briefly. */
  batchSize?: number
}

/** The reason on the entry of a create taken back (its starting credits could not be written). */
export const CREATE_ROLLED_BACK = 'create rolled back: the starting credits could not be written'

const ACTIONS = ['created', 'updated', 'enabled', 'disabled', 'revoked', 'deleted', 'rotated', 'credits_changed'] as const

const auditInputSchema = z.strictObject({
  keyId: z.optional(identifierSchema),
  tenantId: z.optional(identifierSchema),
  ownerId: z.optional(identifierSchema),
  actorId: z.optional(identifierSchema),
  action: z.optional(z.enum(ACTIONS)),
  from: z.optional(dateSchema),
  to: z.optional(dateSchema),
  limit: z._default(z.number().check(z.int(), z.gte(1), z.lte(1000)), 50),
  cursor: z.nullish(z.string().check(z.maxLength(512))),
})

const pruneSchema = z.strictObject({
  before: dateSchema,
  batchSize: z._default(z.number().check(z.int(), z.gte(1), z.lte(10_000)), 1000),
})

function toEntry(record: AuditRecord): AuditEntry {
  return Object.freeze({
    id: record.id,
    at: new Date(record.at),
    action: record.action,
    keyId: record.keyId,
    ownerId: record.ownerId,
    tenantId: record.tenantId,
    actor: record.actor,
    reason: record.reason,
    requestId: record.requestId,
    changes: record.changes,
  })
}

export class AuditTrail {
  readonly #store: (KeyStore & AuditStore) | null
  #lastAt = -1
  #sequence = 0

  constructor(
    store: KeyStore,
    readonly enabled: boolean,
    private readonly paging: Paging,
  ) {
    this.#store = isAuditStore(store) ? store : null
  }

  /** The entry a change of `key` writes, or `undefined` when the trail is off. */
  entryFor(action: AuditAction, key: StoredKey, changes: AuditChanges, context: ResolvedContext, now: number): AuditRecord | undefined {
    if (!this.enabled) return undefined
    return { ...this.#head(action, { keyId: key.id, ownerId: key.ownerId, tenantId: key.tenantId }, context, now), changes }
  }

  /** The entry of a credit change, whose `changes` the store fills in with the balances. */
  creditEntryFor(owner: { keyId: string | null; ownerId: string | null; tenantId: string | null }, context: ResolvedContext, now: number): Omit<AuditRecord, 'changes'> | undefined {
    return this.enabled ? this.#head('credits_changed', owner, context, now) : undefined
  }

  /** The public form of an entry: what events and `audit()` show. */
  static publicEntry = toEntry

  async page(input: AuditInput): Promise<AuditPage> {
    const { cursor, limit, from, to, ...filters } = parseInput(auditInputSchema, input)
    const store = this.#requireStore()
    const binding: CursorBinding = ['audit', filters.keyId ?? null, filters.tenantId ?? null, filters.ownerId ?? null, filters.actorId ?? null, filters.action ?? null, from?.getTime() ?? null, to?.getTime() ?? null]
    const position = cursor == null ? undefined : this.paging.decode(cursor, binding)
    const query = {
      ...filters,
      ...(from === undefined ? {} : { from: from.getTime() }),
      ...(to === undefined ? {} : { to: to.getTime() }),
      ...(position === undefined ? {} : { before: { at: position.createdAt, id: position.id } }),
      limit: limit + 1,
    }
    const records = await callStore('listAudit', () => store.listAudit(query))
    const items = records.slice(0, limit)
    const last = items.at(-1)
    const nextCursor = records.length > limit && last !== undefined ? this.paging.encode({ createdAt: last.at, id: last.id }, binding) : null
    return Object.freeze({ items: Object.freeze(items.map(toEntry)), nextCursor })
  }

  async prune(input: PruneAuditInput): Promise<number> {
    const { before, batchSize } = parseInput(pruneSchema, input)
    const store = this.#requireStore()
    let removed = 0
    for (;;) {
      const batch = await callStore('pruneAudit', () => store.pruneAudit(before.getTime(), batchSize))
      removed += batch
      if (batch < batchSize) return removed
    }
  }

  /**
   * Whether the trail records that this key was deleted (closing its idempotency key for good). A
   * create taken back because its starting credits could not be written does not count: retrying it
   * is what the idempotency key is for.
   */
  async wasDeleted(keyId: string): Promise<boolean> {
    if (!this.enabled || this.#store === null) return false
    const store = this.#store
    const found = await callStore('listAudit', () => store.listAudit({ keyId, action: 'deleted', limit: 10 }))
    return found.some((entry) => entry.reason !== CREATE_ROLLED_BACK)
  }

  #head(action: AuditAction, owner: { keyId: string | null; ownerId: string | null; tenantId: string | null }, context: ResolvedContext, now: number): Omit<AuditRecord, 'changes'> {
    return { id: this.#nextId(now), at: now, action, ...owner, actor: context.actor, reason: context.reason, requestId: context.requestId }
  }

  /**
   * Entries of one millisecond sort by ID: a per-millisecond sequence keeps this instance's entries in
   * the order they were made, and a random tail keeps IDs of different instances apart.
   */
  #nextId(at: number): string {
    this.#sequence = at === this.#lastAt ? this.#sequence + 1 : 0
    this.#lastAt = at
    return `${Math.max(0, at).toString(36).padStart(9, '0')}${this.#sequence.toString(36).padStart(5, '0')}${generateKeyId().slice(0, 10)}`
  }

  #requireStore(): AuditStore {
    if (this.#store === null) throw new ConfigError([{ path: ['store'], message: 'does not keep an audit trail (it does not implement AuditStore)' }])
    return this.#store
  }
}
