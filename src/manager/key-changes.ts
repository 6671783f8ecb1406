/**
 * The management changes of an existing key (update, enable, disable, revoke, delete, rotate): each
 * validates its change context, applies one compare-and-set that writes the change with its audit
 * entry, and announces a change that happened with who, why and what changed.
 */
import type { AuditAction, ChangeContext } from '../audit/audit-store.js'
import { changeDetails } from '../audit/changes.js'
import { resolveContext, type ResolvedContext, type VersionedChangeContext } from '../audit/context.js'
import { KeyNotFoundError, KeyRevokedError, ValidationError } from '../errors.js'
import type { ChangeDetails, KeyEventEmitter } from '../events.js'
import type { InputSchemas } from '../inputs.js'
import type { ExpiryPolicy } from '../policy/expiry.js'
import type { KeyStore, StoredKey } from '../store.js'
import { callStore } from '../store-failure.js'
import type { ApiKey, RotatedKey, RotateOptions, UpdateKeyInput } from '../types.js'
import { parseInput } from '../validation.js'
import type { AuditTrail } from './audit-trail.js'
import { MAX_REVOKE_ATTEMPTS, type Change, type ChangeOptions, type CompareAndSet, type ChangeOutcome } from './compare-and-set.js'
import { checkKeyId } from './key-ids.js'
import type { Permissions } from './permissions.js'
import { Rotation } from './rotation.js'
import { planUpdate, type Patch } from './updates.js'

/** A deleted key's entry lists nothing: the key is gone, not changed. */
const NOTHING_CHANGED = Object.freeze({})

/** What the key changes need from their KeyManager. */
export interface KeyChangesParts {
  readonly store: KeyStore
  readonly records: CompareAndSet
  readonly trail: AuditTrail
  readonly permissions: Permissions
  readonly rotation: Rotation
  readonly events: KeyEventEmitter
  readonly schemas: InputSchemas
  readonly expiry: ExpiryPolicy
  readonly clock: () => number
  readonly project: (record: StoredKey) => ApiKey
  readonly token: (record: StoredKey, secret: string) => string
  /** Called after the key was deleted, e.g. to drop a cached copy. */
  readonly onDeleted: (keyId: string) => void
}

/** A key after a change, and whether the call changed it (a no-op writes nothing and emits nothing). */
export interface KeyChangeResult {
  readonly key: ApiKey
  readonly changed: boolean
}

/** A validated change context, with the version the caller expects when the call takes one. */
export type ParsedContext = ResolvedContext & { readonly expectedVersion?: number }

export class KeyChanges {
  constructor(private readonly parts: KeyChangesParts) {}

  /** The validated change context of a call; `versioned` calls also take `expectedVersion`. */
  context(context: VersionedChangeContext | undefined, versioned: boolean): ParsedContext {
    if (context === undefined) return resolveContext({})
    const { schemas } = this.parts
    const parsed: VersionedChangeContext = parseInput(versioned ? schemas.versionedContext : schemas.context, context)
    return { ...resolveContext(parsed), ...(parsed.expectedVersion === undefined ? {} : { expectedVersion: parsed.expectedVersion }) }
  }

  async update(id: string, patch: UpdateKeyInput, context: VersionedChangeContext | undefined): Promise<ApiKey> {
    checkKeyId(id)
    const change = this.context(context, true)
    // A field given as `undefined` is treated as omitted, not as a request to erase it.
    const { expectedVersion = change.expectedVersion, ...parsed } = Object.fromEntries(
      Object.entries(parseInput(this.parts.schemas.update, patch)).filter(([, value]) => value !== undefined),
    ) as Patch & { expectedVersion?: number }
    if (Object.keys(parsed).length === 0) throw new ValidationError([{ path: [], message: 'names no field to change' }])
    await this.parts.permissions.checkPatch(this.parts.store, id, parsed)
    const plan = planUpdate(id, parsed, this.parts.expiry)
    const { outcome, key, details } = await this.#apply(id, 'updated', plan.change, change, { expectedVersion })
    if (details !== null) {
      this.parts.events.emit({ type: 'updated', at: key.updatedAt, key, fields: plan.changes(), ...details })
      this.parts.permissions.announce(outcome.before, outcome.after, key, details, this.parts.events)
    }
    return key
  }

  async setEnabled(id: string, enabled: boolean, context: VersionedChangeContext | undefined): Promise<ApiKey> {
    return (await this.setEnabledReporting(id, enabled, context)).key
  }

  /** {@link KeyChanges.setEnabled}, also saying whether this call changed the key (`false`: it already was). */
  async setEnabledReporting(id: string, enabled: boolean, context: VersionedChangeContext | undefined): Promise<KeyChangeResult> {
    checkKeyId(id)
    const change = this.context(context, true)
    const action = enabled ? 'enabled' : 'disabled'
    // A disabled key keeps why and by whom, so a settings page can say; enabling it clears both.
    const disabled = enabled ? { disabledReason: null, disabledBy: null } : { disabledReason: change.reason, disabledBy: change.actor }
    const apply: Change = (current) => {
      if (current.revokedAt !== null) throw new KeyRevokedError(id)
      return current.enabled === enabled ? current : { ...current, enabled, ...disabled }
    }
    const { key, details } = await this.#apply(id, action, apply, change, { expectedVersion: change.expectedVersion })
    if (details !== null) this.parts.events.emit({ type: action, at: key.updatedAt, key, ...details })
    return { key, changed: details !== null }
  }

  async revoke(id: string, context: ChangeContext | undefined): Promise<ApiKey> {
    return (await this.revokeReporting(id, context)).key
  }

  /** {@link KeyChanges.revoke}, also saying whether this call revoked the key (`false`: it already was). */
  async revokeReporting(id: string, context: ChangeContext | undefined): Promise<KeyChangeResult> {
    checkKeyId(id)
    const apply: Change = (current, now) =>
      current.revokedAt !== null ? current : { ...current, revokedAt: now, previousHash: null, previousHashExpiresAt: null }
    const { key, details } = await this.#apply(id, 'revoked', apply, this.context(context, false), { attempts: MAX_REVOKE_ATTEMPTS })
    if (details !== null) this.parts.events.emit({ type: 'revoked', at: key.updatedAt, key, ...details })
    return { key, changed: details !== null }
  }

  async delete(id: string, context: ChangeContext | undefined): Promise<void> {
    checkKeyId(id)
    const change = this.context(context, false)
    const { store, trail, clock, events } = this.parts
    const record = await callStore('get', () => store.get(id))
    if (record === null) throw new KeyNotFoundError(id)
    const now = clock()
    const existed = await callStore('delete', () => store.delete(id, trail.entryFor('deleted', record, NOTHING_CHANGED, change, now))).finally(() =>
      // Also when the delete failed: it may still have landed (see CompareAndSet.apply).
      this.parts.onDeleted(id),
    )
    if (!existed) throw new KeyNotFoundError(id)
    events.emit({ type: 'deleted', at: new Date(now), key: this.parts.project(record), ...changeDetails(change, NOTHING_CHANGED) })
  }

  async rotate(id: string, options: RotateOptions): Promise<RotatedKey> {
    checkKeyId(id)
    const { gracePeriod, idempotencyKey, expectedVersion, ...context } = parseInput(this.parts.schemas.rotate, options)
    const plan = this.parts.rotation.plan(id, gracePeriod, idempotencyKey)
    const { outcome, key, details } = await this.#apply(id, 'rotated', plan.change, resolveContext(context), { expectedVersion })
    const previousSecretValidUntil = Rotation.previousSecretValidUntil(outcome.after, gracePeriod)
    if (details !== null) this.parts.events.emit({ type: 'rotated', at: key.updatedAt, key, previousSecretValidUntil, ...details })
    return { key, token: this.parts.token(outcome.after, plan.secret()), previousSecretValidUntil }
  }

  /** One compare-and-set writing the change with its audit entry; `details` is `null` when nothing changed. */
  async #apply(id: string, action: AuditAction, change: Change, context: ResolvedContext, options: Omit<ChangeOptions, 'audit'>) {
    const outcome: ChangeOutcome = await this.parts.records.apply(id, change, { ...options, audit: { action, context } })
    const key = this.parts.project(outcome.after)
    const details: ChangeDetails | null = outcome.changed ? changeDetails(context, outcome.changes) : null
    return { outcome, key, details }
  }
}
