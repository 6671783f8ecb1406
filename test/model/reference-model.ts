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
 *   have passed; after a delete it is refused (`idempotency_conflict`): the delete's audit entry
 *   outlives the key;
 * - every management change leaves one audit entry (action, key, owner, tenant, actor, instant and the
 *   fields that really changed, instants as ISO strings); a change that changes nothing leaves none;
 * - an idempotent rotate replays while no other rotation happened since; otherwise it derives its
 *   secret from the key ID, the idempotency key and the secret it replaces, so the same three give the
 *   same token again (possible only on a deleted key created again by an idempotent create);
 * - usage limits (src/limits, docs of `LimitsOptions`, `UsageStore`, `LimitState`), after the scope
 *   check: a key follows its own policy, else the default; its rate counters are checked first (a
 *   refusal charges nothing), then its credits (a refusal still charges the counters); `consume: false`
 *   evaluates and writes nothing. Counters and balances are kept by ID, independently of the keys: they
 *   outlive a delete, so a key created again under the same ID finds them.
 *
 * The usage arithmetic here is written from the documentation, not taken from src/limits: token
 * buckets refill `min(capacity, value + ((now - at) * limit) / windowMs)` in doubles, fixed windows
 * start at `now - now % windowMs`, balances refill lazily to `amount` at period starts (intervals from
 * the key's creation for a key's balance, from the epoch for shared pools; calendar days in UTC).
 *
 * Not modelled: groups, metadata, descriptions, types, absolute `expiresAt` inputs, pepper rotation
 * (re-hashing), `lastUsedAt`, expiry notices, events (`credits_changed` included), counter purges,
 * a function-valued `defaultPolicy`, `limits.counters` / `failOpen`, concurrent callers and several
 * managers on one store (the cache is only invalidated by this manager's own calls).
 */

import type { LimitsOptions } from '../../src/limits/config.js'

export const SECOND = 1_000
export const MINUTE = 60 * SECOND
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR
/** How long an idempotent create can be replayed. */
export const IDEMPOTENCY_WINDOW_MS = DAY

export type KeyStatus = 'active' | 'disabled' | 'expired' | 'revoked'

export type FailureReason = 'unknown_key' | 'wrong_secret' | 'revoked' | 'disabled' | 'expired' | 'wrong_environment' | 'insufficient_scope'

/** One rate limit as verify reports it (`LimitState`), instants in epoch ms. */
export interface ExpectedLimit {
  readonly policy: string
  readonly name: string
  readonly limit: number
  readonly remaining: number
  readonly resetAt: number
  readonly windowMs: number
}

/** A balance as the credits calls (and `usage_exceeded`) report it, `refillAt` in epoch ms. */
export interface ExpectedBalance {
  readonly remaining: number
  readonly refillAt: number | null
}

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
      /** The policy the key names (`null`: it follows the default). */
      readonly policy: string | null
      readonly limits: readonly ExpectedLimit[]
      /** The balance after this request, or `null` when the key is charged no credits. */
      readonly credits: number | null
    }
  | {
      readonly valid: false
      readonly reason: 'rate_limited'
      readonly keyId: string
      readonly retryAfterMs: number
      readonly limits: readonly ExpectedLimit[]
      readonly violated: readonly string[]
    }
  | { readonly valid: false; readonly reason: 'usage_exceeded'; readonly keyId: string; readonly credits: ExpectedBalance; readonly limits: readonly ExpectedLimit[] }
  | { readonly valid: false; readonly reason: FailureReason; readonly keyId: string }

/** The outcome a management call must have; `ok` carries no detail, the caller checks the rest. */
export type Refusal = 'not_found' | 'revoked' | 'quota_exceeded' | 'conflict_rotated' | 'conflict_different' | 'conflict_expired' | 'conflict_deleted'

/** Who a command acts as: the model's own copy of the library's actor shape. */
export type ModelActor = { readonly type: 'user' | 'service'; readonly id: string } | null

/**
 * An audit entry the model predicts. `exact`: `changes` is all of it; otherwise the entry must hold
 * at least these changes (the model does not follow every field, e.g. a rotation's start). For credit
 * entries `owned` is `false`: the model does not predict which owner and tenant a pool names.
 */
export interface PredictedEntry {
  readonly action: string
  readonly keyId: string | null
  readonly ownerId: string | null
  readonly tenantId: string | null
  readonly actor: ModelActor
  readonly at: number
  readonly changes: Readonly<Record<string, { readonly from: unknown; readonly to: unknown }>>
  readonly exact: boolean
  readonly owned: boolean
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString()
}

export interface VerifyRequirements {
  readonly environment?: string
  readonly scopes?: readonly string[]
  /** What the request weighs; default 1. */
  readonly cost?: number
  /** `false`: check only, nothing moves; default `true`. */
  readonly consume?: boolean
}

/** What the last change of the secret was: the create, or a rotation (with its idempotency key). */
type SecretOrigin = { readonly kind: 'create' } | { readonly kind: 'rotate'; readonly idempotencyKey: string | null; readonly token: string }

export interface ModelKey {
  readonly id: string
  readonly ownerId: string | null
  readonly tenantId: string | null
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
  /** The policy the key names; `null` follows the default. */
  policy: string | null
  /** Whether the key is charged a balance of its own (created with `credits`, or given some by a credits call). */
  hasCredits: boolean
  /** Who disabled the key, while it is disabled. */
  disabledBy: ModelActor
}

/** The request fields an idempotent create compares on a replay. */
export interface CreateRequest {
  readonly name: string
  readonly ownerId: string | null
  readonly tenantId: string | null
  readonly environment: string
  readonly scopes: readonly string[]
  readonly roles: readonly string[]
  readonly expiresInMs: number | undefined
  readonly idempotencyKey?: string
  readonly policy?: string | null
  /** A starting balance of the key's own. */
  readonly credits?: number
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
  /** The `limits` option of the KeyManager under test (policies and default; read by the model itself). */
  readonly limits: LimitsOptions
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
  /** Every audit entry the system must have written, oldest first. */
  readonly audit: PredictedEntry[] = []
  /** Key IDs deleted at some point: their idempotency keys are closed for good. */
  private readonly deleted = new Set<string>()
  /** Idempotent rotations by [key ID, idempotency key, token before] → the token they derived. */
  private readonly derivations = new Map<string, string>()
  /** The configured policies, read into the model's own terms. */
  readonly policies: ReadonlyMap<string, ModelPolicy>
  /** Rate counter states by counter identity (policy, rule, who shares it); a missing one is untouched. */
  readonly counters = new Map<string, CounterState>()
  /** Credit balances by pool identity (who is charged); a missing one was never written. */
  readonly balances = new Map<string, BalanceState>()

  constructor(readonly options: ModelOptions) {
    this.now = options.start
    this.policies = readPolicies(options.limits)
  }

  advance(ms: number): void {
    this.now += ms
  }

  quotaOf(ownerId: string | null): number {
    return ownerId === null ? Infinity : (this.options.quotas[ownerId] ?? Infinity)
  }

  /** Non-revoked keys of the owner within the tenant: what a quota counts. */
  countFor(ownerId: string, tenantId: string | null): number {
    let count = 0
    for (const key of this.keys.values()) if (key.ownerId === ownerId && key.tenantId === tenantId && !key.revoked) count++
    return count
  }

  hasToken(token: string): boolean {
    return this.tokenSet.has(token)
  }

  /** The current token of a live key picked by a generated index, or `undefined` when none is live. */
  currentToken(index: number): { readonly token: string; readonly keyId: string } | undefined {
    const live = [...this.keys.values()]
    const key = live[index % live.length]
    return key === undefined ? undefined : { token: key.currentToken, keyId: key.id }
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
    if (slot !== undefined && this.deleted.has(slot.keyId)) return { kind: 'refuse', refusal: 'conflict_deleted' }
    if (request.ownerId !== null && this.countFor(request.ownerId, request.tenantId) >= this.quotaOf(request.ownerId)) return { kind: 'refuse', refusal: 'quota_exceeded' }
    return { kind: 'create', reuse: slot ?? null }
  }

  /** Records a key the system created as planned, with its starting balance when it was given one. */
  created(request: CreateRequest, keyId: string, token: string, actor: ModelActor = null): void {
    const expiresIn = request.expiresInMs ?? this.options.defaultExpiryMs
    this.keys.set(keyId, {
      id: keyId,
      ownerId: request.ownerId,
      tenantId: request.tenantId,
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
      policy: request.policy ?? null,
      hasCredits: request.credits !== undefined,
      disabledBy: null,
    })
    const key = this.live(keyId)
    const changes: Record<string, { from: unknown; to: unknown }> = { environment: { from: null, to: key.environment }, name: { from: null, to: key.name } }
    if (key.scopes.length > 0) changes['scopes'] = { from: null, to: [...key.scopes] }
    if (key.roles.length > 0) changes['roles'] = { from: null, to: [...key.roles] }
    if (key.expiresAt !== null) changes['expiresAt'] = { from: null, to: iso(key.expiresAt) }
    if (key.policy !== null) changes['policy'] = { from: null, to: key.policy }
    this.entry('created', key, actor, changes)
    // A starting balance is written right after, as a credit change of its own.
    if (request.credits !== undefined) this.creditsChanged(keyId, actor)
    if (!this.keyIds.includes(keyId)) this.keyIds.push(keyId)
    this.remember(token, keyId)
    if (request.idempotencyKey !== undefined) this.slots.set(slotName(request), { keyId, token })
    // The starting balance is set (after the pool's refill, as any `set`) on the key's own balance.
    if (request.credits !== undefined) this.adjustPool(this.chargedPool(this.live(keyId))!, 'set', request.credits)
  }

  /** The refusal a management call on this key must meet, if any (a revoked key refuses changes). */
  refusalFor(keyId: string, { revokedRefuses }: { revokedRefuses: boolean }): Refusal | null {
    const key = this.keys.get(keyId)
    if (key === undefined) return 'not_found'
    if (revokedRefuses && key.revoked) return 'revoked'
    return null
  }

  update(keyId: string, patch: { name?: string; scopes?: readonly string[]; expiresInMs?: number; policy?: string | null }, actor: ModelActor = null): void {
    const key = this.live(keyId)
    const before = { name: key.name, scopes: [...key.scopes], expiresAt: iso(key.expiresAt), policy: key.policy }
    if (patch.name !== undefined) key.name = patch.name
    if (patch.scopes !== undefined) key.scopes = [...patch.scopes]
    if (patch.expiresInMs !== undefined) key.expiresAt = this.now + patch.expiresInMs
    if (patch.policy !== undefined) key.policy = patch.policy
    const after = { name: key.name, scopes: [...key.scopes], expiresAt: iso(key.expiresAt), policy: key.policy }
    const changes: Record<string, { from: unknown; to: unknown }> = {}
    for (const field of ['name', 'scopes', 'expiresAt', 'policy'] as const) {
      if (JSON.stringify(before[field]) !== JSON.stringify(after[field])) changes[field] = { from: before[field], to: after[field] }
    }
    if (Object.keys(changes).length > 0) this.entry('updated', key, actor, changes)
  }

  setEnabled(keyId: string, enabled: boolean, actor: ModelActor = null): void {
    const key = this.live(keyId)
    if (key.enabled === enabled) return
    const changes: Record<string, { from: unknown; to: unknown }> = { enabled: { from: key.enabled, to: enabled } }
    const disabledBy = enabled ? null : actor
    if (JSON.stringify(key.disabledBy) !== JSON.stringify(disabledBy)) changes['disabledBy'] = { from: key.disabledBy, to: disabledBy }
    key.enabled = enabled
    key.disabledBy = disabledBy
    this.entry(enabled ? 'enabled' : 'disabled', key, actor, changes)
  }

  /** Revoking ends a grace period: the previous secret stops matching at once. */
  revoke(keyId: string, actor: ModelActor = null): void {
    const key = this.live(keyId)
    if (key.revoked) return
    key.revoked = true
    key.previous = null
    this.entry('revoked', key, actor, { revokedAt: { from: null, to: iso(this.now) } }, false)
  }

  delete(keyId: string, actor: ModelActor = null): void {
    const key = this.live(keyId)
    this.keys.delete(keyId)
    this.deleted.add(keyId)
    this.entry('deleted', key, actor, {})
  }

  /** A credit add or set: an entry whose balances and pool owner the model leaves to the system. */
  creditsChanged(keyId: string | null, actor: ModelActor): void {
    this.audit.push({ action: 'credits_changed', keyId, ownerId: null, tenantId: null, actor, at: this.now, changes: {}, exact: false, owned: false })
  }

  private entry(action: string, key: ModelKey, actor: ModelActor, changes: PredictedEntry['changes'], exact = true): void {
    this.audit.push({ action, keyId: key.id, ownerId: key.ownerId, tenantId: key.tenantId, actor, at: this.now, changes, exact, owned: true })
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
  rotated(keyId: string, token: string, graceMs: number, idempotencyKey: string | undefined, actor: ModelActor = null): void {
    const key = this.live(keyId)
    this.entry('rotated', key, actor, {}, false)
    if (idempotencyKey !== undefined) this.derivations.set(JSON.stringify([keyId, idempotencyKey, key.currentToken]), token)
    // The old secret never outlives the key: its grace ends at the key's expiry at the latest.
    const until = Math.min(this.now + graceMs, key.expiresAt ?? Infinity)
    key.previous = graceMs > 0 || idempotencyKey !== undefined ? { token: key.currentToken, until } : null
    key.currentToken = token
    key.origin = { kind: 'rotate', idempotencyKey: idempotencyKey ?? null, token }
    key.tokens.add(token)
    this.remember(token, keyId)
  }

  /**
   * What `verify(token, requirements)` must answer now. `keyId` is the ID the token names. A request
   * that reaches the usage checks with `consume` (the default) is charged in the model too: call this
   * exactly once per real verify.
   */
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
    const usage = this.use(key, requirements.cost ?? 1, requirements.consume !== false)
    if (usage.refused === 'rate_limited') return { valid: false, reason: 'rate_limited', keyId, retryAfterMs: usage.retryAfterMs, limits: usage.limits, violated: usage.violated }
    if (usage.refused === 'usage_exceeded') return { valid: false, reason: 'usage_exceeded', keyId, credits: usage.balance!, limits: usage.limits }
    return { valid: true, keyId, name: key.name, scopes: key.scopes, granted, expiresAt: key.expiresAt, policy: key.policy, limits: usage.limits, credits: usage.balance?.remaining ?? null }
  }

  // ---- usage: policies, counters, balances ----

  /** The policy a key follows now: the one it names, else the default (`null`: unlimited). */
  policyOf(key: ModelKey): ModelPolicy | null {
    const named = key.policy === null ? undefined : this.policies.get(key.policy)
    if (named !== undefined) return named
    const fallback = this.options.limits.defaultPolicy
    if (typeof fallback === 'function') throw new Error('model: a function-valued defaultPolicy is not modelled')
    return fallback == null ? null : this.policies.get(fallback)!
  }

  /**
   * The balance a key's verify is charged to, or `null`: its own when it has one (with its policy's
   * credits rule only when that rule is per key, else a rule with no refill starting at 0), else its
   * policy's pool, shared as the rule's `per` says after the fallbacks for missing owner or tenant.
   */
  chargedPool(key: ModelKey): Pool | null {
    const rule = this.policyOf(key)?.credits ?? null
    if (key.hasCredits) return { id: shareOf('key', key), rule: rule !== null && rule.per === 'key' ? rule : OWN_BALANCE, anchor: key.createdAt }
    if (rule === null) return null
    const per = sharedAs(rule.per, key)
    return { id: shareOf(per, key), rule, anchor: per === 'key' ? key.createdAt : 0 }
  }

  /** One consumption of `cost` by `key`: decided on the counters and the balance, and applied when `commit`. */
  private use(key: ModelKey, cost: number, commit: boolean): UsageDecision {
    const policy = this.policyOf(key)
    const pool = this.chargedPool(key)
    const rules = policy?.rate ?? []
    if (rules.length === 0 && pool === null) return { refused: null, limits: [], balance: null, retryAfterMs: 0, violated: [] }
    const counterIds = rules.map((rule) => `${policy!.name}/${rule.name}/${shareOf(rule.per, key)}`)
    const now = this.now
    // Each counter as it stands now (refilled, or rolled over to the current window).
    const states = rules.map((rule, index) => counterNow(rule, this.counters.get(counterIds[index]!), now))
    const period = pool === null ? null : this.periodOf(pool)
    const balance = pool === null ? null : this.balanceNow(pool)
    const refillAt = period?.next ?? null
    const present = (list: readonly CounterState[]) => rules.map((rule, index) => limitView(policy!.name, rule, list[index]!, now))

    const short = rules.filter((rule, index) => !hasRoom(rule, states[index]!, cost))
    if (short.length > 0) {
      // Refused by rate: nothing is written, not even a refill.
      const retryAfterMs = Math.max(...short.map((rule) => waitUntilRoom(rule, states[rules.indexOf(rule)]!, cost, now)))
      return { refused: 'rate_limited', limits: present(states), balance: balance && { remaining: balance.remaining, refillAt }, retryAfterMs, violated: short.map((rule) => rule.name) }
    }
    const charged = rules.map((rule, index) => take(rule, states[index]!, cost))
    // The counters take the cost whether or not the credits then suffice.
    if (commit) charged.forEach((state, index) => this.counters.set(counterIds[index]!, state))
    if (balance !== null && balance.remaining < cost) {
      return { refused: 'usage_exceeded', limits: present(charged), balance: { remaining: balance.remaining, refillAt }, retryAfterMs: 0, violated: ['credits'] }
    }
    if (balance !== null && commit) this.balances.set(pool!.id, { remaining: balance.remaining - cost, refilledAt: balance.refilledAt })
    return { refused: null, limits: present(charged), balance: balance && { remaining: balance.remaining - cost, refillAt }, retryAfterMs: 0, violated: [] }
  }

  /** The refill period a pool is in now; `null` when it never refills. */
  private periodOf(pool: Pool): { start: number; next: number } | null {
    return pool.rule.refill === null ? null : refillPeriod(pool.rule.refill, this.now, pool.anchor)
  }

  /** A balance as it stands now: `initial` (stamped with the period) if never written, restored to `amount` when a new period began. */
  private balanceNow(pool: Pool): BalanceState {
    const period = this.periodOf(pool)
    const stored = this.balances.get(pool.id)
    if (stored === undefined) return { remaining: pool.rule.initial, refilledAt: period?.start ?? null }
    if (period !== null && (stored.refilledAt === null || stored.refilledAt < period.start)) return { remaining: pool.rule.refill!.amount, refilledAt: period.start }
    return stored
  }

  /** `set` (to `max(0, amount)`) or `add` (never below 0) on a pool, after its refill; returns what the call reports. */
  private adjustPool(pool: Pool, mode: 'set' | 'add', amount: number): ExpectedBalance {
    const balance = this.balanceNow(pool)
    const remaining = Math.max(0, mode === 'set' ? amount : balance.remaining + amount)
    this.balances.set(pool.id, { remaining, refilledAt: balance.refilledAt })
    return { remaining, refillAt: this.periodOf(pool)?.next ?? null }
  }

  /**
   * The pool a credits call names. `{ keyId }`: the balance the key is charged to; a key charged none
   * has none to read (`null`), and a write first gives it a balance of its own. An owner (within a
   * tenant, `null` for none) or a tenant: that shared pool, under the credits rule of the named policy
   * (default: `defaultPolicy` when it is a name), with interval refills counted from the epoch.
   */
  private poolOf(target: CreditsTarget, forWrite: boolean): Pool | null | 'not_found' {
    if ('keyId' in target) {
      const key = this.keys.get(target.keyId)
      if (key === undefined) return 'not_found'
      const pool = this.chargedPool(key)
      if (pool !== null || !forWrite) return pool
      key.hasCredits = true
      return this.chargedPool(key)
    }
    const fallback = this.options.limits.defaultPolicy
    const name = target.policy ?? (typeof fallback === 'string' ? fallback : undefined)
    const rule = (name === undefined ? undefined : this.policies.get(name)?.credits) ?? OWN_BALANCE
    const id = 'ownerId' in target ? `owner|${target.tenantId ?? ''}|${target.ownerId}` : `tenant|${target.tenantId}`
    return { id, rule, anchor: 0 }
  }

  /** What `getCredits(target)` must return. */
  getCredits(target: CreditsTarget): ExpectedBalance | null | 'not_found' {
    const pool = this.poolOf(target, false)
    if (pool === null || pool === 'not_found') return pool
    return { remaining: this.balanceNow(pool).remaining, refillAt: this.periodOf(pool)?.next ?? null }
  }

  /** What `addCredits` / `setCredits` must return, applied to the model. */
  adjustCredits(target: CreditsTarget, mode: 'set' | 'add', amount: number): ExpectedBalance | 'not_found' {
    const pool = this.poolOf(target, true)
    if (pool === 'not_found') return pool
    return this.adjustPool(pool!, mode, amount)
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

/** An idempotent create's key is derived from owner, tenant, environment and idempotency key. */
function slotName(request: CreateRequest): string {
  return JSON.stringify([request.ownerId, request.tenantId, request.environment, request.idempotencyKey])
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

// ---- usage limits: the model's own reading of the `limits` option and its arithmetic ----

export type Share = 'key' | 'owner' | 'tenant'

/** A rate rule with its defaults filled in: a bucket's capacity is its `burst`, else its `limit`. */
export interface ModelRule {
  readonly name: string
  readonly algorithm: 'token-bucket' | 'fixed-window'
  readonly limit: number
  readonly capacity: number
  readonly windowMs: number
  readonly per: Share
}

export type ModelRefill = { readonly amount: number; readonly intervalMs: number } | { readonly amount: number; readonly monthDay: number }

/** A credits rule with its defaults filled in: `initial` defaults to the refill amount, else 0. */
export interface ModelCredits {
  readonly initial: number
  readonly refill: ModelRefill | null
  readonly per: Share
}

export interface ModelPolicy {
  readonly name: string
  readonly rate: readonly ModelRule[]
  readonly credits: ModelCredits | null
}

/** A token bucket: tokens and the instant they were counted. A fixed window: the count and the window start. */
export interface CounterState {
  readonly value: number
  readonly at: number
}

export interface BalanceState {
  readonly remaining: number
  /** The start of the refill period the balance was last restored for (or stamped with); `null` if none. */
  readonly refilledAt: number | null
}

/** A balance a call is charged to: its identity, its rule, and where interval refills count from. */
interface Pool {
  readonly id: string
  readonly rule: ModelCredits
  readonly anchor: number
}

/** The target of a credits call, as passed to the KeyManager. */
export type CreditsTarget =
  | { readonly keyId: string }
  | { readonly ownerId: string; readonly tenantId?: string | null; readonly policy?: string }
  | { readonly tenantId: string; readonly policy?: string }

interface UsageDecision {
  readonly refused: 'rate_limited' | 'usage_exceeded' | null
  readonly limits: readonly ExpectedLimit[]
  readonly balance: ExpectedBalance | null
  readonly retryAfterMs: number
  readonly violated: readonly string[]
}

/** A key's own balance when its policy has no per-key credits rule: no refill, starting empty. */
const OWN_BALANCE: ModelCredits = { initial: 0, refill: null, per: 'key' }

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY }

/** Milliseconds of a window or interval as the model's config writes them: a number, or `<n><ms|s|m|h|d>`. */
function millis(duration: unknown): number {
  if (typeof duration === 'number') return duration
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(String(duration))
  if (match === null) throw new Error(`model: a duration it cannot read: ${String(duration)}`)
  return Number(match[1]) * UNIT_MS[match[2]!]!
}

function readPolicies(limits: LimitsOptions): Map<string, ModelPolicy> {
  const policies = new Map<string, ModelPolicy>()
  for (const [name, policy] of Object.entries(limits.policies ?? {})) {
    const rate = (policy.rate ?? []).map((rule): ModelRule => {
      const algorithm = rule.algorithm ?? 'token-bucket'
      return { name: rule.name, algorithm, limit: rule.limit, capacity: algorithm === 'token-bucket' ? (rule.burst ?? rule.limit) : rule.limit, windowMs: millis(rule.window), per: rule.per ?? 'key' }
    })
    let credits: ModelCredits | null = null
    if (policy.credits !== undefined) {
      const { refill, initial, per } = policy.credits
      const read: ModelRefill | null = refill === undefined ? null : 'interval' in refill ? { amount: refill.amount, intervalMs: millis(refill.interval) } : { amount: refill.amount, monthDay: refill.day ?? 1 }
      credits = { initial: initial ?? read?.amount ?? 0, refill: read, per: per ?? 'key' }
    }
    policies.set(name, { name, rate, credits })
  }
  return policies
}

/** Who really shares under `per`: a key without a tenant shares as its owner, a key without an owner alone. */
function sharedAs(per: Share, key: ModelKey): Share {
  if (per === 'tenant' && key.tenantId === null) per = 'owner'
  if (per === 'owner' && key.ownerId === null) per = 'key'
  return per
}

/** The identity of what `key` shares under `per`: the key, the owner within its tenant, or the tenant. */
function shareOf(per: Share, key: ModelKey): string {
  const share = sharedAs(per, key)
  if (share === 'tenant') return `tenant|${key.tenantId}`
  if (share === 'owner') return `owner|${key.tenantId ?? ''}|${key.ownerId}`
  return `key|${key.id}`
}

/** A counter at `now`, before the request: a bucket refilled (full when never used), a window rolled over. */
function counterNow(rule: ModelRule, stored: CounterState | undefined, now: number): CounterState {
  if (rule.algorithm === 'fixed-window') {
    const windowStart = now - (now % rule.windowMs)
    if (stored === undefined || stored.at < windowStart) return { value: 0, at: windowStart }
    return stored
  }
  if (stored === undefined) return { value: rule.capacity, at: now }
  if (now <= stored.at) return stored
  // The documented refill, in doubles and in this order, so the model and the stores round alike.
  const refilled = stored.value + ((now - stored.at) * rule.limit) / rule.windowMs
  return { value: refilled > rule.capacity ? rule.capacity : refilled, at: now }
}

function hasRoom(rule: ModelRule, state: CounterState, cost: number): boolean {
  return rule.algorithm === 'fixed-window' ? state.value + cost <= rule.limit : state.value >= cost
}

function take(rule: ModelRule, state: CounterState, cost: number): CounterState {
  return { value: rule.algorithm === 'fixed-window' ? state.value + cost : state.value - cost, at: state.at }
}

/**
 * A counter as verify reports it: `remaining` requests of cost 1 (whole tokens), and `resetAt`, when
 * it next grows: a window's end; for a bucket the instant the next whole token is in (now when full).
 */
function limitView(policy: string, rule: ModelRule, state: CounterState, now: number): ExpectedLimit {
  let remaining: number
  let resetAt: number
  if (rule.algorithm === 'fixed-window') {
    remaining = Math.max(0, rule.limit - state.value)
    resetAt = state.at + rule.windowMs
  } else {
    const whole = Math.floor(state.value)
    remaining = Math.max(0, whole)
    resetAt = state.value >= rule.capacity ? now : now + Math.ceil(((whole + 1 - state.value) * rule.windowMs) / rule.limit)
  }
  return { policy, name: rule.name, limit: rule.limit, remaining, resetAt, windowMs: rule.windowMs }
}

/**
 * How long a request of `cost` refused by this counter waits, ms: to the window's end; for a bucket
 * until `cost` tokens are in (at least 1 ms), or, for a cost above its capacity, until it is full.
 */
function waitUntilRoom(rule: ModelRule, state: CounterState, cost: number, now: number): number {
  if (rule.algorithm === 'fixed-window') return state.at + rule.windowMs - now
  const perMs = (tokens: number) => Math.ceil((tokens * rule.windowMs) / rule.limit)
  if (cost > rule.capacity) return perMs(Math.max(0, rule.capacity - state.value))
  return Math.max(1, perMs(cost - state.value))
}

/** The refill period `now` is in: every `intervalMs` from `anchor`, or from the month day (clamped to the month's last day) at 00:00 UTC. */
function refillPeriod(refill: ModelRefill, now: number, anchor: number): { start: number; next: number } {
  if ('intervalMs' in refill) {
    if (now < anchor) throw new Error('model: an instant before the refill anchor')
    const start = anchor + Math.floor((now - anchor) / refill.intervalMs) * refill.intervalMs
    return { start, next: start + refill.intervalMs }
  }
  // Months counted as year * 12 + month; the period starts at the latest refill day not after `now`.
  const date = new Date(now)
  let month = date.getUTCFullYear() * 12 + date.getUTCMonth()
  if (refillDay(month, refill.monthDay) > now) month -= 1
  return { start: refillDay(month, refill.monthDay), next: refillDay(month + 1, refill.monthDay) }
}

function refillDay(monthIndex: number, day: number): number {
  const year = Math.floor(monthIndex / 12)
  const month = monthIndex % 12
  const daysInMonth = new Date(Date.UTC(year, month + 1, 1) - DAY).getUTCDate()
  return Date.UTC(year, month, Math.min(day, daysInMonth))
}
