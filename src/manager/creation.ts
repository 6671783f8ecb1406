/**
 * Inserting a new key: the record built from validated input, a fresh (or, for an idempotent create,
 * derived) ID and secret, the insert under the owner's quota, and the retries an ID collision or a
 * racing delete calls for.
 */
import type { SecretHasher } from '../crypto/hash.js'
import { generateKeyId, generateSecret } from '../crypto/random.js'
import { ConflictError, QuotaExceededError, StoreError } from '../errors.js'
import type { KeyStore, QuotaCheck, StoredKey } from '../store.js'
import { callStore } from '../store-failure.js'
import { MAX_UPDATE_ATTEMPTS } from './compare-and-set.js'
import type { AuditChanges } from '../audit/audit-store.js'
import { changesBetween } from '../audit/changes.js'
import type { ResolvedContext } from '../audit/context.js'
import type { AuditTrail } from './audit-trail.js'
import type { Idempotency } from './idempotency.js'

/** New key IDs drawn before giving up on an (astronomically unlikely) ID collision. */
const MAX_ID_ATTEMPTS = 3

/** The fields of a new key, validated; everything else (ID, hash, instants, state) is set here. */
export type NewKeyFields = Pick<StoredKey, 'name' | 'description' | 'ownerId' | 'tenantId' | 'environment' | 'type' | 'scopes' | 'roles' | 'groups' | 'metadata' | 'expiresAt'> & {
  readonly policy: string | null
  readonly hasCredits: boolean
}

/** The stored record and its secret; `created` is `false` when an idempotent retry found it already made. */
export interface Inserted {
  readonly record: StoredKey
  readonly secret: string
  readonly created: boolean
  /** What the key was created with, as its `created` entry lists it; `{}` for a replay. */
  readonly changes: AuditChanges
}

export class Creation {
  constructor(
    private readonly store: KeyStore,
    private readonly hasher: SecretHasher,
    private readonly idempotency: Idempotency,
    private readonly startLength: number,
    /** Called after an insert that landed, e.g. to drop a cached "unknown key". */
    private readonly onWritten: (keyId: string) => void,
    private readonly trail: AuditTrail,
  ) {}

  /**
   * Inserts the key under `quota`.
   *
   * @throws {@link QuotaExceededError}, {@link ConflictError} (idempotent creates), {@link StoreError}.
   */
  async insert(fields: NewKeyFields, quota: QuotaCheck | null, idempotencyKey: string | undefined, now: number, context: ResolvedContext): Promise<Inserted> {
    if (quota !== null && quota.limit === 0) throw new QuotaExceededError(quota.ownerId, 0, quota.tenantId)
    // With an idempotency key, ID and secret are derived from it, so a retry rebuilds the same key.
    const derived = idempotencyKey === undefined ? null : this.idempotency.createIdentity(fields.ownerId, fields.tenantId, fields.environment, idempotencyKey)
    // A derived ID that is taken and then gone when read was deleted concurrently (and may be re-created
    // by another retry): that is retried like a compare-and-set, not bounded like random-ID collisions.
    const attempts = derived === null ? MAX_ID_ATTEMPTS : MAX_UPDATE_ATTEMPTS
    // A deleted key's audit entry outlives it: a replay must not bring the key (and its token) back.
    if (derived !== null && (await this.trail.wasDeleted(derived.keyId))) throw this.idempotency.deletedSince(derived.keyId)
    for (let attempt = 0; attempt < attempts; attempt++) {
      const keyId = derived?.keyId ?? generateKeyId()
      const secret = derived?.secret ?? generateSecret()
      const record = this.#record(fields, keyId, secret, now, context)
      const changes = changesBetween('created', null, record)
      const entry = this.trail.entryFor('created', record, changes, context, now)
      const outcome = await callStore('insert', () => this.store.insert(record, quota, entry))
      if (outcome === 'quota_exceeded') throw new QuotaExceededError(quota!.ownerId, quota!.limit, quota!.tenantId)
      if (outcome === 'inserted') {
        this.onWritten(keyId)
        return { record, secret, created: true, changes }
      }
      if (derived !== null) {
        // The derived ID is taken: by this very request's earlier try (replay it), or it was deleted
        // in between (try the insert again).
        const existing = await callStore('get', () => this.store.get(keyId))
        if (existing !== null) {
          this.idempotency.checkReplay(existing, record, secret, now)
          return { record: existing, secret, created: false, changes: {} }
        }
      }
    }
    // The store worked throughout; concurrent deletes kept taking the key away between insert and read.
    if (derived !== null) throw new ConflictError(derived.keyId)
    throw new StoreError('insert', { cause: new Error(`The store reported ${MAX_ID_ATTEMPTS} fresh random key IDs as taken`) })
  }

  #record(fields: NewKeyFields, id: string, secret: string, now: number, context: ResolvedContext): StoredKey {
    return {
      id,
      name: fields.name,
      description: fields.description,
      ownerId: fields.ownerId,
      tenantId: fields.tenantId,
      environment: fields.environment,
      type: fields.type,
      scopes: fields.scopes,
      roles: fields.roles,
      groups: fields.groups,
      metadata: fields.metadata,
      start: secret.slice(0, this.startLength),
      hash: this.hasher.hash(fields.environment, id, secret),
      previousHash: null,
      previousHashExpiresAt: null,
      createdAt: now,
      updatedAt: now,
      expiresAt: fields.expiresAt,
      lastUsedAt: null,
      enabled: true,
      revokedAt: null,
      expiryNoticeFor: null,
      version: 1,
      policy: fields.policy,
      hasCredits: fields.hasCredits,
      createdBy: context.actor,
      updatedBy: context.actor,
      disabledReason: null,
      disabledBy: null,
    }
  }
}
