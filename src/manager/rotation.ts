/**
 * Secret rotation: the new secret (random, or derived for an idempotent retry), and how long the old
 * one keeps working — never longer than the policy's maximum grace period, never past the key's expiry.
 */
import type { SecretHasher } from '../crypto/hash.js'
import { generateSecret } from '../crypto/random.js'
import { KeyRevokedError, ValidationError } from '../errors.js'
import type { StoredKey } from '../store.js'
import type { Change } from './compare-and-set.js'
import type { Idempotency } from './idempotency.js'

/** The replaced secret's hash while its grace period lasts (exclusive end), else `null`: verify and leak reports accept a secret matching it. */
export function livePreviousHash(record: StoredKey, now: number): string | null {
  return record.previousHash !== null && record.previousHashExpiresAt !== null && now < record.previousHashExpiresAt ? record.previousHash : null
}

/** One rotation in the making: the change to apply, and the secret it chose once applied. */
export interface RotationPlan {
  readonly change: Change
  /** The secret of the new token; read it after the change was applied (or found already done). */
  secret(): string
}

export class Rotation {
  constructor(
    private readonly hasher: SecretHasher,
    private readonly idempotency: Idempotency,
    private readonly startLength: number,
    private readonly maxGracePeriodMs: number,
  ) {}

  /** @throws {@link ValidationError} naming `gracePeriod` beyond the policy maximum, or `idempotencyKey` without a pepper. */
  plan(id: string, gracePeriodMs: number, idempotencyKey: string | undefined): RotationPlan {
    if (gracePeriodMs > this.maxGracePeriodMs) {
      throw new ValidationError([{ path: ['gracePeriod'], message: `exceeds the longest grace period the rotation policy allows (rotation.maxGracePeriod, ${this.maxGracePeriodMs} ms)` }])
    }
    if (idempotencyKey !== undefined) this.idempotency.requirePepper()
    let secret = ''
    const change: Change = (current: StoredKey, now: number) => {
      if (current.revokedAt !== null) throw new KeyRevokedError(id)
      if (idempotencyKey !== undefined) {
        const done = this.idempotency.completedRotation(current, idempotencyKey)
        if (done !== null) {
          secret = done // this rotation already happened and its answer was lost: the same token again
          return current
        }
      }
      secret = idempotencyKey === undefined ? generateSecret() : this.idempotency.rotationSecret(id, idempotencyKey, current.hash)
      // An idempotent rotation keeps the replaced hash even without grace (expired at once, so it never
      // verifies): a retry needs it to recognise its own rotation.
      const keepPrevious = gracePeriodMs > 0 || idempotencyKey !== undefined
      return {
        ...current,
        start: secret.slice(0, this.startLength),
        hash: this.hasher.hash(current.environment, current.id, secret),
        previousHash: keepPrevious ? current.hash : null,
        // The old secret dies with the key at the latest: a grace period never extends a key's life.
        previousHashExpiresAt: keepPrevious ? Math.min(now + gracePeriodMs, current.expiresAt ?? Infinity) : null,
      }
    }
    return { change, secret: () => secret }
  }

  /** Until when the replaced secret works after `after` was written, or `null` when it stopped at once. */
  static previousSecretValidUntil(after: StoredKey, gracePeriodMs: number): Date | null {
    const until = after.previousHashExpiresAt
    return gracePeriodMs > 0 && until !== null && until > after.updatedAt ? new Date(until) : null
  }
}
