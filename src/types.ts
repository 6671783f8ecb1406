/**
 * The public types of the KeyManager's inputs and results: keys, create/update/list inputs, pages,
 * issued tokens, rotation and verification results.
 */
import type { Actor } from './audit/audit-store.js'
import type { Duration } from './policy/duration.js'
import type { CreditBalance, LimitState } from './limits/limit-state.js'
import type { JsonObject, KeyStatus } from './store.js'

/**
 * The public record of an API key. It never holds the secret or its hash, so it is safe to return
 * from an API, log, or serialise with `JSON.stringify` or `util.inspect`.
 *
 * @example
 * ```ts
 * const key = await keys.get(keyId)
 * if (key) console.log(`${key.name}: ${key.start}… (${key.environment})`)
 * ```
 */
export interface ApiKey {
  /** Public key ID: 16 base62 characters, also embedded in the token. */
  readonly id: string
  /** Human-readable label, e.g. `CI (main)`. Not unique. */
  readonly name: string
  /** Free text for people; `null` when none was given. */
  readonly description: string | null
  /** Your ID of the user or account that holds the key; quotas count per owner. `null` for none. */
  readonly ownerId: string | null
  /** Your ID of the tenant (organisation, workspace) the key belongs to; `null` for none. */
  readonly tenantId: string | null
  /** The one environment this key belongs to, e.g. `live`. */
  readonly environment: string
  /** A free label such as `access` or `ingest`; filterable in {@link KeyManager.list}. */
  readonly type: string | null
  /** Scopes granted directly. */
  readonly scopes: readonly string[]
  /** Roles granted; their scopes are resolved at verify time. */
  readonly roles: readonly string[]
  /** Groups granted; each group is a configured set of roles. */
  readonly groups: readonly string[]
  /** Your own JSON data about the key, stored as given. */
  readonly metadata: Readonly<JsonObject>
  /** The first characters of the current secret, for display (`startLength`, default 4). */
  readonly start: string
  /** When the key was created. */
  readonly createdAt: Date
  /** When the key was last changed by a management call; verification does not change it. */
  readonly updatedAt: Date
  /** The key is valid while `now < expiresAt`; `null` never expires. */
  readonly expiresAt: Date | null
  /** When the key last verified successfully, to the precision of `lastUsedPrecision`; `null` if never. */
  readonly lastUsedAt: Date | null
  /** `false` while the key is disabled: it verifies again once enabled. */
  readonly enabled: boolean
  /** When the key was revoked; `null` if it is not. */
  readonly revokedAt: Date | null
  /**
   * The usage policy the key names (see the `limits` option). Absent when the key names none and
   * follows `limits.defaultPolicy`.
   */
  readonly policy?: string
  /** Who created the key; `null` when the create named no actor (and for keys made by 0.1.0). */
  readonly createdBy: Actor | null
  /** Who made the last management change (the creator until then); `null` when that call named no actor. */
  readonly updatedBy: Actor | null
  /** Changes on every write of the key; pass it as `expectedVersion` to change the key only if no one else has since. */
  readonly version: number
  /** Why the key was disabled, while it is disabled and a reason was given; else `null`. */
  readonly disabledReason: string | null
  /** Who disabled the key, while it is disabled and the call named an actor; else `null`. */
  readonly disabledBy: Actor | null
}

/**
 * Extra facts about the owner passed to a function-valued `maxKeysPerOwner`, e.g. `{ role: 'admin' }`.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 *
 * const keys = new KeyManager({ store, maxKeysPerOwner: (owner) => (owner.plan === 'pro' ? 50 : 5) })
 * await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live', owner: { plan: 'pro' } })
 * ```
 */
export type OwnerContext = Readonly<Record<string, unknown>>

/**
 * Input of {@link KeyManager.create}. Unknown fields are rejected.
 *
 * Expiry: give `expiresIn` or `expiresAt`, or `null` in either for "never"; with neither, the policy
 * default applies. A request beyond the policy maximum is a {@link ValidationError}, never clamped.
 *
 * @example
 * ```ts
 * await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live', roles: ['readonly'], expiresIn: '30d' })
 * ```
 */
export interface CreateKeyInput {
  /** 1–200 characters. */
  name: string
  /** Up to 1,000 characters. */
  description?: string | null
  /** The holder of the key, up to 256 characters; counted against `maxKeysPerOwner`. Immutable. */
  ownerId?: string | null
  /** The tenant of the key, up to 256 characters. Immutable. */
  tenantId?: string | null
  /** Required when more than one environment is configured. */
  environment?: string
  /** A label such as `access` or `ingest`: letters, digits, `_`, `-`, `.`, `:`; up to 64 characters. */
  type?: string | null
  /** Scopes granted directly, e.g. `data:read`; `data:*` and `*` are wildcards unless `scopeWildcards` is off. */
  scopes?: readonly string[]
  /** Names of configured roles. */
  roles?: readonly string[]
  /** Names of configured groups. */
  groups?: readonly string[]
  /** Lifetime from now, e.g. `'30d'` or milliseconds; `null` for never. */
  expiresIn?: Duration | null
  /** Exact expiry instant, in the future; `null` for never. */
  expiresAt?: Date | null
  /** A JSON object, up to 8 KiB serialised and 8 levels deep. */
  metadata?: JsonObject
  /** Passed to a function-valued `maxKeysPerOwner` (merged over `{ id: ownerId }`). */
  owner?: OwnerContext
  /**
   * Makes the call safe to retry after an ambiguous failure (a timeout, a cut connection): a retry
   * with the same idempotency key, owner, tenant and environment within 24 hours returns the same key
   * and the same token instead of creating a second key, and never counts twice against the quota.
   * 16–255 visible ASCII characters: use a fresh UUID or random token per intended key, and treat it
   * like a password (with the pepper it reproduces the token). Requires a `pepper`.
   */
  idempotencyKey?: string
  /** A configured usage policy (rate limits, credits); omitted or `null` follows `limits.defaultPolicy`. */
  policy?: string | null
  /**
   * A credit balance of the key's own, an integer >= 0: each verify takes its `cost` from it, and at
   * zero verify answers `usage_exceeded`. Charged instead of the policy's shared pool.
   */
  credits?: number
}

/**
 * Changes for {@link KeyManager.update}. Omitted fields stay as they are. A new expiry is measured
 * from now and must lie within the policy maximum; this is how a key's life is extended.
 *
 * @example
 * ```ts
 * await keys.update(keyId, { name: 'CI (main)', scopes: ['data:read', 'data:write'], expiresIn: '90d' })
 * ```
 */
export interface UpdateKeyInput {
  /** New name, 1–200 characters. */
  name?: string
  /**
   * Change the key only if it is still at this `version` (same as the context's `expectedVersion`);
   * else a `ConflictError` with code `version_conflict`, and nothing changes.
   */
  expectedVersion?: number
  /** New description; `null` clears it. */
  description?: string | null
  /** New label; `null` clears it. */
  type?: string | null
  /** Replaces the directly granted scopes as a whole. */
  scopes?: readonly string[]
  /** Replaces the roles as a whole. */
  roles?: readonly string[]
  /** Replaces the groups as a whole. */
  groups?: readonly string[]
  /** Replaces the metadata object as a whole. */
  metadata?: JsonObject
  /** New lifetime measured from now; `null` for never (only when the policy has no maximum). */
  expiresIn?: Duration | null
  /** New exact expiry instant, in the future; `null` for never (only when the policy has no maximum). */
  expiresAt?: Date | null
  /** A configured usage policy; `null` returns the key to the default. Takes effect on the next verify. */
  policy?: string | null
}

/**
 * Filters and paging for {@link KeyManager.list}.
 *
 * @example
 * ```ts
 * import type { ApiKey } from 'keywarden'
 *
 * const active: ApiKey[] = []
 * let cursor: string | null = null
 * do {
 *   const page = await keys.list({ ownerId: 'u1', status: 'active', limit: 50, cursor })
 *   active.push(...page.items)
 *   cursor = page.nextCursor
 * } while (cursor)
 * ```
 */
export interface ListKeysInput {
  /** Only keys of this owner. */
  ownerId?: string
  /** Only keys of this tenant. */
  tenantId?: string
  /** Only keys of this environment. */
  environment?: string
  /** Only keys with this label. */
  type?: string
  /** Only keys in this state now. */
  status?: KeyStatus
  /** 1–1,000; default 50. */
  limit?: number
  /** `nextCursor` from the previous page; `null` or omitted for the first page. */
  cursor?: string | null
  /** By creation time: `'asc'` (oldest first, the default) or `'desc'` (newest first). */
  order?: 'asc' | 'desc'
}

/**
 * One page of keys, as returned by {@link KeyManager.list}.
 *
 * @example
 * ```ts
 * import type { KeyPage } from 'keywarden'
 *
 * const page: KeyPage = await keys.list({ limit: 20 })
 * if (page.nextCursor) await keys.list({ limit: 20, cursor: page.nextCursor })
 * ```
 */
export interface KeyPage {
  /** The keys of this page, in the requested order. */
  readonly items: readonly ApiKey[]
  /** Opaque cursor for the next page; `null` on the last page. */
  readonly nextCursor: string | null
}

/**
 * A freshly issued secret: the key's public record and the token the caller shows once.
 * Keywarden keeps only a hash of the secret; the token cannot be recovered later.
 *
 * @example
 * ```ts
 * import type { IssuedKey } from 'keywarden'
 *
 * app.post('/api-keys', async (req, res) => {
 *   const { key, token }: IssuedKey = await keys.create({ name: 'CI', ownerId: currentUser.id, environment: 'live' })
 *   res.status(201).json({ id: key.id, token }) // the only time the token is shown
 * })
 * ```
 */
export interface IssuedKey {
  /** The key's public record. */
  readonly key: ApiKey
  /** `{prefix}_{environment}_{keyId}_{secret}{checksum}`. Show it once; never log or store it. */
  readonly token: string
}

/**
 * What {@link KeyManager.rotate} returns: the new token, and until when the replaced one still works,
 * so a settings page can tell its user how long they have to deploy the new token.
 *
 * @example
 * ```ts
 * const { token, previousSecretValidUntil } = await keys.rotate(keyId, { gracePeriod: '24h' })
 * console.log(`The old token works until ${previousSecretValidUntil?.toISOString() ?? 'now: it stopped at once'}`)
 * ```
 */
export interface RotatedKey extends IssuedKey {
  /** When the replaced secret stops working (exclusive); `null` when it stopped at once (no grace period). */
  readonly previousSecretValidUntil: Date | null
}

/**
 * Options of {@link KeyManager.rotate}.
 *
 * @example
 * ```ts
 * const { token } = await keys.rotate(keyId, { gracePeriod: '1h' }) // the old token works for one more hour
 * ```
 */
export interface RotateOptions {
  /**
   * How long the replaced secret keeps working; default 0 (stops at once). At most
   * `rotation.maxGracePeriod` (default 7 days; longer is a {@link ValidationError}), and never past
   * the key's own expiry.
   */
  gracePeriod?: Duration
  /**
   * Makes the rotation safe to retry: a retry with the same idempotency key, while no other rotation
   * has happened since, returns the same token without rotating again (and without a second
   * `rotated` event). A retry after a later rotation rotates anew; it never brings an old secret back.
   * Same format and care as {@link CreateKeyInput.idempotencyKey}. Requires a `pepper`.
   */
  idempotencyKey?: string
  /** Who rotates, and why (see {@link ChangeContext}). */
  actor?: Actor
  /** Why, in words for people. */
  reason?: string
  /** Your request or trace ID. */
  requestId?: string
  /** Rotate only if the key is still at this `version`; else a `ConflictError` (`version_conflict`). */
  expectedVersion?: number
}

/**
 * Options of {@link KeyManager.expiring}.
 *
 * @example
 * ```ts
 * const soon = await keys.expiring({ within: '7d', tenantId: 't1', limit: 200 })
 * ```
 */
export interface ExpiringInput {
  /** The window from now, e.g. `'2d'`. */
  within: Duration
  /** Only keys of this owner. */
  ownerId?: string
  /** Only keys of this tenant. */
  tenantId?: string
  /** Only keys of this environment. */
  environment?: string
  /** Only keys with this label. */
  type?: string
  /** 1–1,000; default 100. */
  limit?: number
  /** `nextCursor` of the previous result; `null` or omitted for the first page. */
  cursor?: string | null
}

/**
 * What {@link KeyManager.expiring} returns: the keys as an array, which is also a {@link KeyPage}
 * (`items` holds the same keys, `nextCursor` continues the walk).
 *
 * @example
 * ```ts
 * import type { ExpiringKeys } from 'keywarden'
 *
 * const soon: ExpiringKeys = await keys.expiring({ within: '2d' })
 * for (const key of soon) console.warn(`${key.name} expires at ${key.expiresAt?.toISOString()}`)
 * if (soon.nextCursor) await keys.expiring({ within: '2d', cursor: soon.nextCursor })
 * ```
 */
export type ExpiringKeys = readonly ApiKey[] & KeyPage

/**
 * Options of {@link KeyManager.notifyExpiring}: the filters of {@link ExpiringInput} (no paging: every
 * matching key is offered) and the function that tells the owner.
 *
 * @example
 * ```ts
 * import type { ApiKey } from 'keywarden'
 *
 * declare const mailer: { warnOwner(key: ApiKey): Promise<void> } // the application's own
 * await keys.notifyExpiring({ within: '2d', environment: 'live', notify: (key) => mailer.warnOwner(key) })
 * ```
 */
export interface NotifyExpiringInput extends Omit<ExpiringInput, 'cursor' | 'limit'> {
  /**
   * Called once per key and expiry date. If it throws, the notice is released and will be offered
   * again on the next run; the error is collected in the result.
   */
  notify: (key: ApiKey) => void | Promise<void>
}

/**
 * Outcome of {@link KeyManager.notifyExpiring}.
 *
 * @example
 * ```ts
 * import type { ApiKey, NotifyExpiringResult } from 'keywarden'
 *
 * declare function notify(key: ApiKey): Promise<void> // e.g. sends the owner an email
 * const { notified, failed }: NotifyExpiringResult = await keys.notifyExpiring({ within: '2d', notify })
 * console.info(`${notified.length} owners told`)
 * for (const { key, error } of failed) console.warn('expiry notice failed', key.id, error)
 * ```
 */
export interface NotifyExpiringResult {
  /** Keys whose owners were told in this run. */
  readonly notified: readonly ApiKey[]
  /** Keys whose `notify` threw; they will be offered again next run. */
  readonly failed: readonly {
    /** The key whose notice failed. */
    readonly key: ApiKey
    /** What `notify` threw or rejected with. */
    readonly error: unknown
  }[]
}

/**
 * Requirements checked by {@link KeyManager.verify}.
 *
 * @example
 * ```ts
 * await keys.verify(token, { scopes: ['data:read', 'data:write'], environment: 'live' })
 * ```
 */
export interface VerifyOptions {
  /** Every one of these scopes must be granted (directly, by a role or by a group). */
  scopes?: readonly string[]
  /** The key must belong to this environment. */
  environment?: string
  /**
   * What this request weighs against the key's rate limits and credits: an integer >= 0, default 1;
   * 0 checks without spending.
   */
  cost?: number
  /** `false`: check only; no counter, credit or `lastUsedAt` moves. Default `true`. */
  consume?: boolean
}

/**
 * Why a token was not accepted. Give callers one answer for all of them; log the reason.
 *
 * @example
 * ```ts
 * import type { VerifyFailureReason } from 'keywarden'
 *
 * const result = await keys.verify(token)
 * if (!result.valid) {
 *   const reason: VerifyFailureReason = result.reason
 *   console.info('api key rejected', reason) // the client only hears "401 invalid key"
 * }
 * ```
 */
export type VerifyFailureReason =
  | 'malformed'
  | 'unknown_key'
  | 'wrong_secret'
  | 'revoked'
  | 'disabled'
  | 'expired'
  | 'wrong_environment'
  | 'insufficient_scope'
  | 'rate_limited'
  | 'usage_exceeded'

/**
 * The outcome of {@link KeyManager.verify}.
 *
 * @example
 * ```ts
 * import type { VerifyResult } from 'keywarden'
 *
 * app.get('/reports', async (req, res) => {
 *   const result: VerifyResult = await keys.verify(req.get('x-api-key') ?? '', { scopes: ['data:read'] })
 *   if (!result.valid) {
 *     res.status(401).end() // result.reason says why, for your logs
 *     return
 *   }
 *   res.json({ owner: result.key.ownerId, scopes: result.scopes })
 * })
 * ```
 */
export type VerifyResult =
  | {
      /** The token was accepted. */
      readonly valid: true
      /** The verified key. */
      readonly key: ApiKey
      /** Every scope the key holds right now: its own plus those of its roles and groups. */
      readonly scopes: readonly string[]
      /** The key's rate limits after this request, in policy order; empty when none apply. */
      readonly limits: readonly LimitState[]
      /** The balance after this request, when the key is charged credits; else `null`. */
      readonly credits: {
        /** Credits left after this request. */
        readonly remaining: number
      } | null
    }
  | {
      /** The token was accepted but a rate limit is spent: answer 429. */
      readonly valid: false
      /** A rate limit of the key's policy is spent. */
      readonly reason: 'rate_limited'
      /** The key ID named by the token. */
      readonly keyId: string
      /** How long until this request would pass, ms. */
      readonly retryAfterMs: number
      /** The key's rate limits, in policy order. */
      readonly limits: readonly LimitState[]
      /** The names of the limits that refused the request. */
      readonly violated: readonly string[]
    }
  | {
      /** The token was accepted but the credits are spent: answer 429. */
      readonly valid: false
      /** The key's credits are spent. */
      readonly reason: 'usage_exceeded'
      /** The key ID named by the token. */
      readonly keyId: string
      /** The balance and its next refill. */
      readonly credits: CreditBalance
      /** The key's rate limits after this request (it counted against them), in policy order. */
      readonly limits: readonly LimitState[]
    }
  | {
      /** The token was not accepted. */
      readonly valid: false
      /** Why, for logs and metrics; do not show it to the caller. */
      readonly reason: Exclude<VerifyFailureReason, 'rate_limited' | 'usage_exceeded'>
      /** The key ID named by the token, when it could be parsed. */
      readonly keyId: string | null
    }
