/**
 * Idempotent create and rotate: with an idempotency key, the key ID and secret are derived from the
 * pepper and that key, so a retry after an ambiguous failure rebuilds the same token instead of a
 * second key. This module derives them and decides whether a retry may be answered as a replay.
 */
import { HashMatch, type SecretHasher } from '../crypto/hash.js'
import { ConflictError, ValidationError } from '../errors.js'
import type { StoredKey } from '../store.js'
import { KEY_ID_LENGTH, SECRET_LENGTH } from '../token/format.js'

/** How long a create can be replayed with its idempotency key (a rotation replays while no other rotation happened). */
const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000

const CONFLICTS = {
  different: 'The idempotency key was already used for a different request',
  rotated: 'The idempotency key was already used, and the key has been rotated since',
  expired: 'The idempotency key was already used more than 24 hours ago',
  deleted: 'The idempotency key was already used, and the key has been deleted since',
} as const

function conflict(keyId: string, kind: keyof typeof CONFLICTS): ConflictError {
  return new ConflictError(keyId, CONFLICTS[kind], 'idempotency_conflict')
}

/** Whether a stored key is what `attempted` would have created (the expiry instant may differ). */
function sameRequest(existing: StoredKey, attempted: StoredKey): boolean {
  const fields = (record: StoredKey) =>
    JSON.stringify([record.name, record.description, record.ownerId, record.tenantId, record.environment, record.type, record.scopes, record.roles, record.groups, record.metadata])
  return fields(existing) === fields(attempted)
}

export class Idempotency {
  constructor(private readonly hasher: SecretHasher) {}

  /** @throws {@link ValidationError} naming `idempotencyKey` without a pepper, the only secret input of the derivation. */
  requirePepper(): void {
    if (!this.hasher.peppered) {
      throw new ValidationError([{ path: ['idempotencyKey'], message: 'needs the pepper option: idempotent retries derive the key from it' }])
    }
  }

  /** The key ID and secret of an idempotent create (labels unchanged since 0.1.0, so retries survive an upgrade). */
  createIdentity(ownerId: string | null, tenantId: string | null, environment: string, idempotencyKey: string): { keyId: string; secret: string } {
    return {
      keyId: this.#derive(['create-id', ownerId, tenantId, environment, idempotencyKey], KEY_ID_LENGTH),
      secret: this.#derive(['create-secret', ownerId, tenantId, environment, idempotencyKey], SECRET_LENGTH),
    }
  }

  /**
   * The secret of an idempotent rotation, derived from the key and the hash it replaces: a retry can
   * then tell "already done" from "not yet", and a stale retry after a later rotation makes a new
   * secret, never an old one.
   */
  rotationSecret(keyId: string, idempotencyKey: string, hashBefore: string): string {
    return this.#derive(['rotate-secret', keyId, idempotencyKey, hashBefore], SECRET_LENGTH)
  }

  /**
   * Whether `current` already holds the rotation that `idempotencyKey` asked for (its answer was lost):
   * the secret to hand out again, or `null` when the rotation has yet to happen.
   */
  completedRotation(current: StoredKey, idempotencyKey: string): string | null {
    if (current.previousHash === null) return null
    const candidate = this.rotationSecret(current.id, idempotencyKey, current.previousHash)
    return this.hasher.compare(current.hash, current.environment, current.id, candidate) === HashMatch.None ? null : candidate
  }

  /**
   * Checks that an existing key may be returned as the replay of the create that `attempted` and
   * `secret` describe. @throws {@link ConflictError} (`idempotency_conflict`) when it may not.
   */
  /** The conflict of a replay whose key was deleted: the key stays deleted. */
  deletedSince(keyId: string): ConflictError {
    return conflict(keyId, 'deleted')
  }

  checkReplay(existing: StoredKey, attempted: StoredKey, secret: string, now: number): void {
    const id = existing.id
    if (this.hasher.compare(existing.hash, existing.environment, id, secret) === HashMatch.None) throw conflict(id, 'rotated')
    if (!sameRequest(existing, attempted)) throw conflict(id, 'different')
    if (now - existing.createdAt > IDEMPOTENCY_WINDOW_MS) throw conflict(id, 'expired')
  }

  #derive(parts: readonly (string | null)[], length: number): string {
    this.requirePepper()
    return this.hasher.derive(JSON.stringify(parts), length)!
  }
}
