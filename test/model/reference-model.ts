/**
 * The reference model for the model-based tests: plain TypeScript, no keywarden code. It keeps what
 * keys exist and every token ever issued, and says what `verify` must answer for each token and what
 * every management call must do, following the semantics documented in src/key-manager.ts and
 * src/types.ts:
 *
 * - verify checks, in order: the key exists (`unknown_key`), the secret matches the current one or the
 *   one previous secret while `now < previousUntil` (`wrong_secret`), `revoked`, `disabled`, `expired`
 *   (valid while `now < expiresAt`), environment, scopes;
 * - rotating keeps at most one previous secret; rotating again ends its grace; revoking ends it too;
 * - revocation is irreversible (enable, disable, update and rotate of a revoked key are refused);
 *   delete works on any key and makes its tokens `unknown_key`;
 * - quotas count the non-revoked keys of an owner;
 * - an idempotent create replays while the key is unrotated, the request is the same and at most 24 h
 *   have passed; after a delete it creates the key again, with the same ID and token;
 * - an idempotent rotate replays while no other rotation happened since; otherwise it derives its
 *   secret from the key ID, the idempotency key and the secret it replaces, so the same three give the
 *   same token again (possible only on a deleted key created again by an idempotent create).
 *
 * Not modelled: tenants, groups, metadata, descriptions, types, absolute `expiresAt` inputs, pepper
 * rotation (re-hashing), `lastUsedAt`, expiry notices, concurrent callers and several managers on one
 * store (the cache is only invalidated by this manager's own calls).
 */

export const SECOND = 1_000
export const MINUTE = 60 * SECOND
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR
/** How long an idempotent create can be replayed. */
export const IDEMPOTENCY_WINDOW_MS = DAY

export type KeyStatus = 'active' | 'disabled' | 'expired' | 'revoked'

export type FailureReason = 'unknown_key' | 'wrong_secret' | 'revoked' | 'disabled' | 'expired' | 'wrong_environment' | 'insufficient_scope'

/** What `verify` must answer, reduced to what the model knows. */
export type ExpectedVerify =
  | {
      readonly valid: true
      readonly keyId: string
      readonly name: string
      /** The key's own scopes. */
      readonly scopes: readonly string[]
      /** Own scopes plus those of its roles. */
      readonly granted: readonly string[]
      readonly expiresAt: number | null
    }
  | { readonly valid: false; readonly reason: FailureReason; readonly keyId: string }

/** The outcome a management call must have; `ok` carries no detail, the caller checks the rest. */
export type Refusal = 'not_found' | 'revoked' | 'quota_exceeded' | 'conflict_rotated' | 'conflict_different' | 'conflict_expired'

export interface VerifyRequirements {
  readonly environment?: string
  readonly scopes?: readonly string[]
}

/** What the last change of the secret was: the create, or a rotation (with its idempotency key). */
type SecretOrigin = { readonly kind: 'create' } | { readonly kind: 'rotate'; readonly idempotencyKey: string | null; readonly token: string }

export interface ModelKey {
  readonly id: string
  readonly ownerId: string | null
  readonly environment: string
  name: string
  scopes: string[]
  readonly roles: readonly string[]
  readonly createdAt: number
  expiresAt: number | null
  enabled: boolean
  revoked: boolean
  currentToken: string
  previous: { readonly token: string; readonly until: number } | null
  origin: SecretOrigin
  /** Every token this incarnation of the key has had (a rotation must never repeat one). */
  readonly tokens: Set<string>
}

/** The request fields an idempotent create compares on a replay. */
export interface CreateRequest {
  readonly name: string
  readonly ownerId: string | null
  readonly environment: string
  readonly scopes: readonly string[]
  readonly roles: readonly string[]
  readonly expiresInMs: number | undefined
  readonly idempotencyKey?: string
}

/** What an idempotent create slot remembers once it created a key. */
interface IdempotentSlot {
  readonly keyId: string
  readonly token: string
}

export interface ModelOptions {
  readonly start: number
  /** Owner ID → at most this many non-revoked keys; owners not listed are unlimited. */
  readonly quotas: Readonly<Record<string, number>>
  /** Role → scopes, as configured on the KeyManager under test. */
  readonly roles: Readonly<Record<string, readonly string[]>>
  /** Lifetime of a key created without an expiry. */
  readonly defaultExpiryMs: number | null
}

export class KeyModel {
  now: number
  /** Live keys (not deleted), by ID. */
  readonly keys = new Map<string, ModelKey>()
  /** Every key ID ever issued, in order of first appearance, deleted ones included. */
  readonly keyIds: string[] = []
  /** Every token ever issued, in order, with the key ID it names. */
  readonly tokens: { readonly token: string; readonly keyId: string }[] = []
  private readonly tokenSet = new Set<string>()
  private readonly slots = new Map<string, IdempotentSlot>()
  /** Idempotent rotations by [key ID, idempotency key, token before] → the token they derived. */
  private readonly derivations = new Map<string, string>()

  constructor(readonly options: ModelOptions) {
    this.now = options.start
  }

  advance(ms: number): void {
    this.now += ms
  }

  quotaOf(ownerId: string | null): number {
    return ownerId === null ? Infinity : (this.options.quotas[ownerId] ?? Infinity)
  }

  /** Non-revoked keys of the owner: what a quota counts. */
  countFor(ownerId: string): number {
    let count = 0
    for (const key of this.keys.values()) if (key.ownerId === ownerId && !key.revoked) count++
    return count
  }

  hasToken(token: string): boolean {
    return this.tokenSet.has(token)
  }

  /** Picks a key ID ever issued by a generated index, or `undefined` when there is none yet. */
  pickKeyId(index: number): string | undefined {
    return this.keyIds.length === 0 ? undefined : this.keyIds[index % this.keyIds.length]
  }

  /**
   * What a create must do. For an idempotent create whose key exists: a replay (`replay` with the
   * token it must return) or a refusal. Otherwise `create`, with the ID and token it must reuse when
   * the idempotent key was created before and deleted since, or a quota refusal.
   */
  planCreate(request: CreateRequest): { kind: 'refuse'; refusal: Refusal } | { kind: 'replay'; keyId: string; token: string } | { kind: 'create'; reuse: IdempotentSlot | null } {
    const slot = request.idempotencyKey === undefined ? undefined : this.slots.get(slotName(request))
    const existing = slot === undefined ? undefined : this.keys.get(slot.keyId)
    if (slot !== undefined && existing !== undefined) {
      if (existing.origin.kind !== 'create') return { kind: 'refuse', refusal: 'conflict_rotated' }
      const same = existing.name === request.name && sameList(existing.scopes, request.scopes) && sameList(existing.roles, request.roles)
      if (!same) return { kind: 'refuse', refusal: 'conflict_different' }
      if (this.now - existing.createdAt > IDEMPOTENCY_WINDOW_MS) return { kind: 'refuse', refusal: 'conflict_expired' }
      return { kind: 'replay', keyId: slot.keyId, token: slot.token }
    }
    if (request.ownerId !== null && this.countFor(request.ownerId) >= this.quotaOf(request.ownerId)) return { kind: 'refuse', refusal: 'quota_exceeded' }
    return { kind: 'create', reuse: slot ?? null }
  }

  /** Records a key the system created as planned. */
  created(request: CreateRequest, keyId: string, token: string): void {
    const expiresIn = request.expiresInMs ?? this.options.defaultExpiryMs
    this.keys.set(keyId, {
      id: keyId,
      ownerId: request.ownerId,
      environment: request.environment,
      name: request.name,
      scopes: [...request.scopes],
      roles: [...request.roles],
      createdAt: this.now,
      expiresAt: expiresIn === null ? null : this.now + expiresIn,
      enabled: true,
      revoked: false,
      currentToken: token,
      previous: null,
      origin: { kind: 'create' },
      tokens: new Set([token]),
    })
    if (!this.keyIds.includes(keyId)) this.keyIds.push(keyId)
    this.remember(token, keyId)
    if (request.idempotencyKey !== undefined) this.slots.set(slotName(request), { keyId, token })
  }

  /** The refusal a management call on this key must meet, if any (a revoked key refuses changes). */
  refusalFor(keyId: string, { revokedRefuses }: { revokedRefuses: boolean }): Refusal | null {
    const key = this.keys.get(keyId)
    if (key === undefined) return 'not_found'
    if (revokedRefuses && key.revoked) return 'revoked'
    return null
  }

  update(keyId: string, patch: { name?: string; scopes?: readonly string[]; expiresInMs?: number }): void {
    const key = this.live(keyId)
    if (patch.name !== undefined) key.name = patch.name
    if (patch.scopes !== undefined) key.scopes = [...patch.scopes]
    if (patch.expiresInMs !== undefined) key.expiresAt = this.now + patch.expiresInMs
  }

  setEnabled(keyId: string, enabled: boolean): void {
    this.live(keyId).enabled = enabled
  }

  /** Revoking ends a grace period: the previous secret stops matching at once. */
  revoke(keyId: string): void {
    const key = this.live(keyId)
    if (key.revoked) return
    key.revoked = true
    key.previous = null
  }

  delete(keyId: string): void {
    this.live(keyId)
    this.keys.delete(keyId)
  }

  /** The token a rotation must return again (a replay), or `null` when it must rotate anew. */
  rotationReplay(keyId: string, idempotencyKey: string | undefined): string | null {
    const { origin } = this.live(keyId)
    if (idempotencyKey === undefined || origin.kind !== 'rotate' || origin.idempotencyKey !== idempotencyKey) return null
    return origin.token
  }

  /**
   * The token a fresh idempotent rotation must derive again, if one with the same key ID and
   * idempotency key ever replaced the same secret. The secret is derived from exactly those, so this
   * happens when an idempotent create re-creates a deleted key (same ID, same first secret) and the
   * same idempotent rotation is retried on it: a token of the deleted key comes back.
   */
  derivedBefore(keyId: string, idempotencyKey: string | undefined): string | undefined {
    if (idempotencyKey === undefined) return undefined
    return this.derivations.get(JSON.stringify([keyId, idempotencyKey, this.live(keyId).currentToken]))
  }

  /**
   * Records a fresh rotation. The replaced secret stays valid while `now < now + grace`, and never past
   * the key's expiry; an idempotent rotation without grace keeps it too (for its replay detection),
   * expired at once.
   */
  rotated(keyId: string, token: string, graceMs: number, idempotencyKey: string | undefined): void {
    const key = this.live(keyId)
    if (idempotencyKey !== undefined) this.derivations.set(JSON.stringify([keyId, idempotencyKey, key.currentToken]), token)
    // The old secret never outlives the key: its grace ends at the key's expiry at the latest.
    const until = Math.min(this.now + graceMs, key.expiresAt ?? Infinity)
    key.previous = graceMs > 0 || idempotencyKey !== undefined ? { token: key.currentToken, until } : null
    key.currentToken = token
    key.origin = { kind: 'rotate', idempotencyKey: idempotencyKey ?? null, token }
    key.tokens.add(token)
    this.remember(token, keyId)
  }

  /** What `verify(token, requirements)` must answer now. `keyId` is the ID the token names. */
  expectVerify(token: string, keyId: string, requirements: VerifyRequirements = {}): ExpectedVerify {
    const key = this.keys.get(keyId)
    if (key === undefined) return { valid: false, reason: 'unknown_key', keyId }
    const matches = token === key.currentToken || (key.previous !== null && token === key.previous.token && this.now < key.previous.until)
    const fail = (reason: FailureReason): ExpectedVerify => ({ valid: false, reason, keyId })
    if (!matches) return fail('wrong_secret')
    if (key.revoked) return fail('revoked')
    if (!key.enabled) return fail('disabled')
    if (key.expiresAt !== null && this.now >= key.expiresAt) return fail('expired')
    if (requirements.environment !== undefined && requirements.environment !== key.environment) return fail('wrong_environment')
    const granted = this.effectiveScopes(key)
    if (requirements.scopes !== undefined && !requirements.scopes.every((scope) => granted.some((pattern) => grants(pattern, scope)))) {
      return fail('insufficient_scope')
    }
    return { valid: true, keyId, name: key.name, scopes: key.scopes, granted, expiresAt: key.expiresAt }
  }

  /** Where a key stands now, in order of precedence: revoked, expired (`expiresAt <= now`), disabled, active. */
  statusOf(key: ModelKey): KeyStatus {
    if (key.revoked) return 'revoked'
    if (key.expiresAt !== null && key.expiresAt <= this.now) return 'expired'
    return key.enabled ? 'active' : 'disabled'
  }

  /** The IDs `list` must return over all its pages: matching live keys by (createdAt, ID), IDs in binary order. */
  listed(filter: { ownerId?: string; environment?: string; status?: KeyStatus }, order: 'asc' | 'desc'): string[] {
    const matching = [...this.keys.values()].filter(
      (key) =>
        (filter.ownerId === undefined || key.ownerId === filter.ownerId) &&
        (filter.environment === undefined || key.environment === filter.environment) &&
        (filter.status === undefined || this.statusOf(key) === filter.status),
    )
    const ids = inListOrder(matching)
    return order === 'asc' ? ids : ids.reverse()
  }

  /** The IDs `expiring({ within })` must return: non-revoked keys with `now < expiresAt <= now + within`, oldest first. */
  expiring(withinMs: number): string[] {
    return inListOrder(
      [...this.keys.values()].filter((key) => !key.revoked && key.expiresAt !== null && this.now < key.expiresAt && key.expiresAt <= this.now + withinMs),
    )
  }

  /** Own scopes, then role scopes. */
  effectiveScopes(key: ModelKey): string[] {
    const all = new Set(key.scopes)
    for (const role of key.roles) for (const scope of this.options.roles[role] ?? []) all.add(scope)
    return [...all]
  }

  private live(keyId: string): ModelKey {
    const key = this.keys.get(keyId)
    if (key === undefined) throw new Error(`model: no live key ${keyId}`)
    return key
  }

  private remember(token: string, keyId: string): void {
    if (this.tokenSet.has(token)) return
    this.tokenSet.add(token)
    this.tokens.push({ token, keyId })
  }
}

/** An idempotent create's key is derived from owner, environment and idempotency key (no tenants here). */
function slotName(request: CreateRequest): string {
  return JSON.stringify([request.ownerId, request.environment, request.idempotencyKey])
}

function inListOrder(keys: readonly ModelKey[]): string[] {
  // `<` on strings compares UTF-16 code units: the binary order the store contract asks for.
  const byPosition = (a: ModelKey, b: ModelKey) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  return [...keys].sort(byPosition).map((key) => key.id)
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index])
}

/** `*` grants everything; `data:*` grants `data:` followed by at least one character; else exact. */
export function grants(pattern: string, required: string): boolean {
  if (pattern === required || pattern === '*') return true
  return pattern.endsWith(':*') && required.length > pattern.length - 1 && required.startsWith(pattern.slice(0, -1))
}
