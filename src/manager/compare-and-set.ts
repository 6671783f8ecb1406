/**
 * Read-modify-write of one key with the store's compare-and-set, retried on conflict after a short
 * random pause, so writers racing on one key spread out instead of colliding again.
 */
import { ConflictError, KeyNotFoundError } from '../errors.js'
import type { AuditAction, AuditChanges } from '../audit/audit-store.js'
import { changesBetween } from '../audit/changes.js'
import type { ResolvedContext } from '../audit/context.js'
import type { KeyStore, StoredKey } from '../store.js'
import type { AuditTrail } from './audit-trail.js'
import { callStore } from '../store-failure.js'

/** Compare-and-set attempts before a concurrent-update conflict is reported. */
const NO_CHANGES: AuditChanges = Object.freeze({})

export const MAX_UPDATE_ATTEMPTS = 10
/**
 * A revoke is the one change that must not lose to a busy key: once it lands every later write is
 * refused, so retrying it (with backoff) until it wins always ends.
 */
export const MAX_REVOKE_ATTEMPTS = 100
/** Upper bound of the random pause between compare-and-set attempts, in ms. */
const MAX_BACKOFF_MS = 20

/** Options of one {@link CompareAndSet.apply}. */
export interface ChangeOptions {
  /** `false` keeps `updatedAt` (bookkeeping that is not a management change, e.g. expiry notices). */
  readonly touchUpdatedAt?: boolean
  /** Attempts before {@link ConflictError}; default {@link MAX_UPDATE_ATTEMPTS}. */
  readonly attempts?: number
  /**
   * A management change: its audit entry is written with it, and its actor becomes `updatedBy`.
   * Absent for bookkeeping writes (expiry notices), which neither name an actor nor leave an entry.
   */
  readonly audit?: { readonly action: AuditAction; readonly context: ResolvedContext }
  /** The version the caller last saw: any other is a `version_conflict`, and nothing changes. */
  readonly expectedVersion?: number | undefined
}

/** The record after a change, and whether anything was written. */
export interface ChangeOutcome {
  /** The record the change was applied to (equal to `after` when nothing changed). */
  readonly before: StoredKey
  readonly after: StoredKey
  readonly changed: boolean
  /** With `audit`: the fields the change really changed, as its entry lists them; `{}` otherwise. */
  readonly changes: AuditChanges
}

/**
 * `change` returns the current record unchanged for a no-op, or a new record (version and updatedAt
 * are set here). It may throw to refuse the change; nothing is written then.
 */
export type Change = (current: StoredKey, now: number) => StoredKey

export class CompareAndSet {
  constructor(
    private readonly store: KeyStore,
    private readonly clock: () => number,
    /** Called after every write that landed, e.g. to drop cached copies. */
    private readonly onWritten: (keyId: string) => void,
    private readonly trail: AuditTrail,
  ) {}

  async apply(id: string, change: Change, options: ChangeOptions = {}): Promise<ChangeOutcome> {
    const attempts = options.attempts ?? MAX_UPDATE_ATTEMPTS
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await pause(Math.random() * Math.min(MAX_BACKOFF_MS, 2 ** attempt))
      const current = await callStore('get', () => this.store.get(id))
      if (current === null) throw new KeyNotFoundError(id)
      if (options.expectedVersion !== undefined && current.version !== options.expectedVersion) throw versionConflict(id, options.expectedVersion, current.version)
      const now = this.clock()
      const next = change(current, now)
      if (next === current) return { before: current, after: current, changed: false, changes: NO_CHANGES }
      const audit = options.audit
      const after: StoredKey = {
        ...next,
        version: current.version + 1,
        updatedAt: options.touchUpdatedAt === false ? current.updatedAt : now,
        ...(audit === undefined ? {} : { updatedBy: audit.context.actor }),
      }
      const changes = audit === undefined ? NO_CHANGES : changesBetween(audit.action, current, after)
      const entry = audit === undefined ? undefined : this.trail.entryFor(audit.action, after, changes, audit.context, now)
      const outcome = await callStore('update', () => this.store.update(after, current.version, entry)).catch((error: unknown) => {
        // A failed write may still have landed (a timeout, or replication not confirmed): dropping
        // the cached copies costs a read if it did not, and keeps them from outliving it if it did.
        this.onWritten(id)
        throw error
      })
      if (outcome === 'updated') {
        this.onWritten(id)
        return { before: current, after, changed: true, changes }
      }
      if (outcome === 'not_found') throw new KeyNotFoundError(id)
    }
    throw new ConflictError(id)
  }
}

/** The caller's `expectedVersion` is not the key's: code `version_conflict`, with both versions. */
export function versionConflict(keyId: string, expected: number, actual: number): ConflictError {
  const error = new ConflictError(keyId, `The API key is at version ${actual}, not the expected ${expected}; read it again`, 'version_conflict')
  return Object.assign(error, { expectedVersion: expected, actualVersion: actual })
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
