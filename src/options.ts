/**
 * The KeyManager's options: their types, the zod schema that checks them, and the frozen, resolved
 * form. Pepper bytes are handed to the hasher once and never kept in the resolved options.
 */
import * as z from 'zod/mini'
import { ConfigError } from './errors.js'
import type { InvalidationChannel } from './cache.js'
import { DEFAULT_PEPPER_ID, type Pepper } from './crypto/hash.js'
import { isAuditStore } from './audit/audit-store.js'
import { isUsageStore } from './limits/usage-store.js'
import type { GroupMap, RoleLookup, RoleMap } from './policy/role-directory.js'
import { limitsSchema, resolveLimits, type LimitsOptions, type ResolvedLimits } from './limits/config.js'
import type { Duration } from './policy/duration.js'
import type { KeyStore } from './store.js'
import { LABEL_PATTERN } from './token/format.js'
import type { OwnerContext } from './types.js'
import { durationSchema, PARSE_CONTEXT, roleNameSchema, scopeListSchema, timerDurationSchema, toIssues } from './validation.js'

/**
 * Facts about the key being created, passed to a function-valued `maxKeysPerOwner`.
 *
 * @example
 * ```ts
 * import { KeyManager, type QuotaContext } from 'keywarden'
 *
 * const keys = new KeyManager({
 *   store,
 *   maxKeysPerOwner: (owner, context: QuotaContext) => (context.environment === 'test' ? 10 : 3),
 * })
 * ```
 */
export interface QuotaContext {
  /** The owner of the new key (keys without an owner are never counted). */
  readonly ownerId: string
  /** The tenant of the new key, or `null`. */
  readonly tenantId: string | null
  /** The environment of the new key. */
  readonly environment: string
}

/**
 * The KeyManager's configuration. Everything but `store` has a default; invalid options throw a
 * {@link ConfigError} naming the option at construction.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { MemoryStore } from 'keywarden/adapters/memory'
 *
 * const keys = new KeyManager({
 *   store: new MemoryStore(),
 *   prefix: 'acme',
 *   environments: ['live', 'test'],
 *   roles: { admin: ['*'], readonly: ['data:read'] },
 *   groups: { support: ['readonly'] },
 *   pepper: process.env.KEY_PEPPER,
 *   expiry: { default: '90d', max: '365d' },
 *   maxKeysPerOwner: (owner) => (owner.role === 'admin' ? Infinity : 2),
 * })
 * ```
 */
export interface KeyManagerOptions {
  /** Where keys live. */
  store: KeyStore
  /** Brand prefix at the start of every token: 1–16 lower-case letters and digits, starting with a letter. Default `'kw'`. */
  prefix?: string
  /** The environments a key can belong to, same syntax as `prefix`. Default `['live', 'test']`. */
  environments?: readonly string[]
  /**
   * Role name → scopes it grants, resolved at verify time. Or a function of the key's tenant
   * returning that map (from your database, so tenant administrators define their own roles): its
   * answer is validated and cached per tenant for `rolesCacheTtl`; `keys.invalidateRoles(tenantId)`
   * drops it at once. A function that throws fails verify closed, like a store failure.
   */
  roles?: RoleMap | RoleLookup<RoleMap>
  /** Group name → roles it grants; or a function of the tenant, as for `roles`. */
  groups?: GroupMap | RoleLookup<GroupMap>
  /**
   * How long a tenant's roles and groups returned by a `roles` or `groups` function are trusted
   * before the function is asked again: the bound on how late a change made elsewhere takes effect.
   * Default `'30s'`.
   */
  rolesCacheTtl?: Duration
  /**
   * Whether every change writes an audit entry (see `keys.audit`), in the same atomic step as the
   * change. Default: on when the store keeps an audit trail (every bundled store does). `true` with a
   * store that does not is a configuration error.
   */
  audit?: boolean
  /**
   * Server-held secret keying the stored hash (HMAC-SHA-256); not empty, 32 random bytes recommended. A list rotates peppers:
   * the first hashes new secrets, the rest still verify old ones (which are re-hashed on success).
   * A bare string or byte array has the ID `'default'`. `null` runs without a pepper, deliberately:
   * hashes are then plain SHA-256, and a leaked database lets anyone confirm leaked tokens offline
   * (see docs/security.md). A `pepper` that is present but `undefined` (an unset environment variable)
   * is a {@link ConfigError}. Leaving the option out runs without a pepper, as in 0.1.0.
   */
  pepper?: string | Uint8Array | readonly Pepper[] | null
  /**
   * With a pepper: whether unpeppered hashes (written while the manager ran without a pepper) still
   * verify, and are re-hashed with the pepper on their next successful verify (a `rehashed` event says
   * so). Off by default, because anyone who can write one row could otherwise store an unpeppered hash
   * of a secret of their choosing. Turn it on only for the migration window after introducing a pepper
   * (docs/operations.md). Default `false`.
   */
  acceptUnpepperedHashes?: boolean
  /** The rotation policy. */
  rotation?: {
    /**
     * The longest `gracePeriod` {@link KeyManager.rotate} accepts; longer is a {@link ValidationError}.
     * The old secret never outlives the key's own expiry either. Default `'7d'`.
     */
    maxGracePeriod?: Duration
  }
  /**
   * Expiry policy. `default` applies when create names no expiry; `max` bounds every expiry. `null` means
   * never / no bound. Default: both `null`. An omitted `default` with a `max` set takes the `max`.
   */
  expiry?: {
    /** Lifetime of a key created without an expiry; `null` for never. */
    default?: Duration | null
    /** Longest lifetime any create or update may ask for; `null` for no bound. */
    max?: Duration | null
  }
  /**
   * How many non-revoked keys one owner may hold: a number, `Infinity`, or a function of the owner
   * context given to `create`. Keys without `ownerId` are not limited. Default `Infinity`.
   */
  maxKeysPerOwner?: number | ((owner: OwnerContext, context: QuotaContext) => number)
  /** How many leading secret characters `ApiKey.start` keeps for display, 0–8. Default 4. */
  startLength?: number
  /** Whether `*` and `prefix:*` in granted scopes are wildcards. When off, `*` is an ordinary character. Default `true`. */
  scopeWildcards?: boolean
  /** A use is recorded in `lastUsedAt` at most once per this interval per key. Default `'1m'`: "last used, to the minute". */
  lastUsedPrecision?: Duration
  /**
   * Write-behind for `lastUsedAt`: verify never writes; uses are buffered per key and written every
   * `flushInterval` (default `'1m'`), when `maxPending` keys (default 10,000) are waiting, and on
   * {@link KeyManager.close}. A crash loses at most one interval of last-used times. `onError` hears of
   * a failed write (default `console.error`); its entries are retried at the next flush.
   */
  usage?: {
    /** How often buffered `lastUsedAt` values are written, 10 ms to about 24.8 days (a timer's limit). Default `'1m'`. */
    flushInterval?: Duration
    /** Most keys buffered at once; reaching it starts a flush early, and uses of further keys are dropped meanwhile. Default 10,000. */
    maxPending?: number
    /** Hears of a failed write. Default `console.error`. */
    onError?: (error: unknown) => void
  }
  /**
   * An optional verification cache in front of the store (off by default): at most `maxEntries` keys
   * (LRU, default 10,000), each kept at most `ttl` (default `'10s'`; `negativeTtl`, default `'1s'`,
   * for unknown key IDs). Store errors are never cached. Every management call through this manager
   * invalidates at once; with a `channel` (Redis pub/sub, PostgreSQL LISTEN/NOTIFY) other instances
   * drop their copy too. Without a channel, or while it is down, a change reaches other instances
   * within `ttl`: that is the revocation-latency bound.
   */
  cache?: {
    /** Most keys kept, least recently used dropped first. Default 10,000. */
    maxEntries?: number
    /** Longest a cached key is trusted: the revocation-latency bound without a channel. Default `'10s'`. */
    ttl?: Duration
    /** Longest an unknown key ID is remembered as unknown. Default `'1s'`. */
    negativeTtl?: Duration
    /**
     * Most unknown key IDs remembered, in an LRU of their own: a flood of forged IDs evicts only other
     * unknown IDs, never the cached keys. Default 10,000.
     */
    negativeMaxEntries?: number
    /** Carries invalidations between instances; see {@link InvalidationChannel}. */
    channel?: InvalidationChannel
    /** Hears of channel failures (the cache then relies on `ttl`). Default `console.error`. */
    onError?: (error: unknown) => void
  }
  /** The clock, in epoch milliseconds. Every time decision uses it. Default `() => Date.now()`, read at every call (so fake timers work). */
  clock?: () => number
  /** Called when an event listener throws or rejects. Default: `console.error`. */
  onListenerError?: (error: unknown, eventType: string) => void
  /**
   * Per-key rate limits and usage credits: named policies, the default one, and where counters live.
   * See {@link LimitsOptions} and the "Rate limits and credits" guide.
   */
  limits?: LimitsOptions
}

/**
 * {@link KeyManagerOptions} after validation and defaults, as {@link KeyManager.options}; frozen.
 * Durations are in milliseconds here.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 *
 * const keys = new KeyManager({ store, expiry: { max: '365d' } })
 * keys.options.expiry.maxMs // 31_536_000_000
 * keys.options.environments // ['live', 'test']
 * ```
 */
export interface ResolvedOptions {
  /** The store. */
  readonly store: KeyStore
  /** The token brand prefix. */
  readonly prefix: string
  /** The configured environments, in the order given. */
  readonly environments: readonly string[]
  /** Role name → scopes it grants; `{}` when roles come from a function. */
  readonly roles: RoleMap
  /** Group name → roles it grants; `{}` when groups come from a function. */
  readonly groups: GroupMap
  /** `rolesCacheTtl` in milliseconds. */
  readonly rolesCacheTtlMs: number
  /** Whether changes write audit entries. */
  readonly audit: boolean
  /** The IDs of the configured peppers, current first; empty without a pepper. The secrets are not here. */
  readonly pepperIds: readonly string[]
  /** Whether unpeppered hashes still verify while a pepper is set (the migration window). */
  readonly acceptUnpepperedHashes: boolean
  /** The rotation policy in milliseconds. */
  readonly rotation: {
    /** The longest grace period `rotate` accepts, in ms. */
    readonly maxGracePeriodMs: number
  }
  /** The expiry policy in milliseconds. */
  readonly expiry: {
    /** Lifetime of a key created without an expiry; `null` for never. */
    readonly defaultMs: number | null
    /** Longest lifetime allowed; `null` for no bound. */
    readonly maxMs: number | null
  }
  /** The names of the configured usage policies (`limits.policies`), for pickers on a settings page. */
  readonly limitPolicies: readonly string[]
  /** The quota as a function (a number option becomes a constant function). */
  readonly maxKeysPerOwner: (owner: OwnerContext, context: QuotaContext) => number
  /** Secret characters kept in `ApiKey.start`. */
  readonly startLength: number
  /** Whether `*` and `prefix:*` are wildcards. */
  readonly scopeWildcards: boolean
  /** `lastUsedPrecision` in milliseconds. */
  readonly lastUsedPrecisionMs: number
  /** The write-behind settings of `lastUsedAt`. */
  readonly usage: {
    /** Interval between flushes, in ms. */
    readonly flushIntervalMs: number
    /** Most keys buffered at once. */
    readonly maxPending: number
    /** Hears of a failed write. */
    readonly onError: (error: unknown) => void
  }
  /** The verification cache settings; `null` when the cache is off. */
  readonly cache: {
    /** Most keys kept. */
    readonly maxEntries: number
    /** Longest a cached key is trusted, in ms. */
    readonly ttlMs: number
    /** Longest an unknown key ID is remembered, in ms. */
    readonly negativeTtlMs: number
    /** Most unknown key IDs remembered. */
    readonly negativeMaxEntries: number
    /** The invalidation channel, if any. */
    readonly channel: InvalidationChannel | undefined
    /** Hears of channel failures. */
    readonly onError: (error: unknown) => void
  } | null
  /** The clock, in epoch milliseconds. */
  readonly clock: () => number
  /** Hears of listeners that throw or reject. */
  readonly onListenerError: (error: unknown, eventType: string) => void
}

/** Default of `rotation.maxGracePeriod`: a week, enough to roll a new token out everywhere. */
const DEFAULT_MAX_GRACE_MS = 7 * 24 * 60 * 60 * 1000

const labelSchema = z.string().check(z.regex(LABEL_PATTERN, 'must be 1-16 lower-case letters or digits, starting with a letter'))


const pepperSecretSchema = z
  .union([z.string(), z.instanceof(Uint8Array)])
  // An empty pepper is a configuration accident (an unset variable), not a choice.
  .check(z.refine((secret: string | Uint8Array) => (typeof secret === 'string' ? secret.length : secret.byteLength) > 0, 'must not be empty'))

const pepperListSchema = z
  .array(
    z.strictObject({
      id: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 letters, digits, - or _')),
      secret: pepperSecretSchema,
    }),
  )
  .check(
    z.minLength(1),
    z.refine((peppers: { id: string }[]) => new Set(peppers.map((pepper) => pepper.id)).size === peppers.length, 'pepper IDs must be unique'),
  )

const storeSchema = z.custom<KeyStore>(
  (store: unknown) =>
    typeof store === 'object' &&
    store !== null &&
    ['insert', 'get', 'update', 'delete', 'list', 'touch'].every((method) => typeof (store as Record<string, unknown>)[method] === 'function'),
  'must implement the KeyStore contract (insert, get, update, delete, list, touch)',
)

/** A function option: zod cannot check its signature, only that it is a function. */
function functionSchema<T>(message: string) {
  return z.custom<T>((value) => typeof value === 'function', message)
}

function optionsSchema(wildcards: boolean) {
  return z
    .strictObject({
      store: storeSchema,
      prefix: z._default(labelSchema, 'kw'),
      environments: z._default(
        z
          .array(labelSchema)
          .check(z.minLength(1), z.refine((list: string[]) => new Set(list).size === list.length, 'environments must be unique')),
        ['live', 'test'],
      ),
      roles: z._default(
        z.union([z.record(roleNameSchema, scopeListSchema(wildcards)), functionSchema<RoleLookup<RoleMap>>('must be a role map or a function of the tenant')]),
        {},
      ),
      groups: z._default(
        z.union([z.record(roleNameSchema, z.array(roleNameSchema)), functionSchema<RoleLookup<GroupMap>>('must be a group map or a function of the tenant')]),
        {},
      ),
      rolesCacheTtl: z._default(durationSchema, 30_000),
      audit: z.optional(z.boolean()),
      pepper: z.optional(z.union([pepperSecretSchema, pepperListSchema, z.null()])),
      acceptUnpepperedHashes: z._default(z.boolean(), false),
      rotation: z._default(z.strictObject({ maxGracePeriod: z._default(durationSchema, DEFAULT_MAX_GRACE_MS) }), { maxGracePeriod: DEFAULT_MAX_GRACE_MS }),
      expiry: z._default(
        z.strictObject({
          default: z.nullish(durationSchema),
          max: z._default(z.nullable(durationSchema), null),
        }),
        { max: null },
      ),
      maxKeysPerOwner: z._default(
        z.union([
          z.number().check(z.refine((n: number) => n === Infinity || (Number.isSafeInteger(n) && n >= 0), 'must be a non-negative integer or Infinity')),
          functionSchema<(owner: OwnerContext, context: QuotaContext) => number>('must be a number or a function'),
        ]),
        Infinity,
      ),
      startLength: z._default(z.number().check(z.int(), z.gte(0), z.lte(8)), 4),
      scopeWildcards: z._default(z.boolean(), true),
      lastUsedPrecision: z._default(durationSchema, 60_000),
      usage: z._default(
        z.strictObject({
          flushInterval: z._default(timerDurationSchema.check(z.refine((ms: number) => ms >= 10, 'must be at least 10 ms')), 60_000),
          maxPending: z._default(z.number().check(z.int(), z.gte(1), z.lte(10_000_000)), 10_000),
          onError: z.optional(functionSchema<(error: unknown) => void>('must be a function')),
        }),
        { flushInterval: 60_000, maxPending: 10_000 },
      ),
      cache: z.optional(
        z.strictObject({
          maxEntries: z._default(z.number().check(z.int(), z.gte(1), z.lte(10_000_000)), 10_000),
          ttl: z._default(durationSchema.check(z.refine((ms: number) => ms > 0, 'must be longer than 0')), 10_000),
          negativeTtl: z._default(durationSchema, 1_000),
          negativeMaxEntries: z._default(z.number().check(z.int(), z.gte(1), z.lte(10_000_000)), 10_000),
          channel: z.optional(
            z.custom<InvalidationChannel>(
              (value) => typeof (value as InvalidationChannel)?.publish === 'function' && typeof (value as InvalidationChannel)?.subscribe === 'function',
              'must implement InvalidationChannel (publish, subscribe)',
            ),
          ),
          onError: z.optional(functionSchema<(error: unknown) => void>('must be a function')),
        }),
      ),
      clock: z._default(functionSchema<() => number>('must be a function returning epoch milliseconds'), () => () => Date.now()),
      onListenerError: z.optional(functionSchema<(error: unknown, eventType: string) => void>('must be a function')),
      limits: limitsSchema,
    })
    .check(
      z.superRefine((options, context) => {
        const { max: maxMs, default: defaultMs = maxMs } = options.expiry
        if (defaultMs === 0) context.addIssue({ code: 'custom', path: ['expiry', 'default'], message: 'must be longer than 0' })
        if (maxMs === 0) context.addIssue({ code: 'custom', path: ['expiry', 'max'], message: 'must be longer than 0' })
        if (maxMs !== null && defaultMs === null) {
          context.addIssue({ code: 'custom', path: ['expiry', 'default'], message: 'must not be null (never) when expiry.max is set' })
        }
        if (maxMs !== null && defaultMs !== null && defaultMs > maxMs) {
          context.addIssue({ code: 'custom', path: ['expiry', 'default'], message: 'must not exceed expiry.max' })
        }
        const limits = options.limits
        if (typeof limits?.defaultPolicy === 'string' && !Object.hasOwn(limits.policies, limits.defaultPolicy)) {
          context.addIssue({ code: 'custom', path: ['limits', 'defaultPolicy'], message: 'names a policy that is not configured' })
        }
        if (limits !== undefined && limits.counters === undefined && !isUsageStore(options.store) && (Object.keys(limits.policies).length > 0 || limits.defaultPolicy != null)) {
          context.addIssue({ code: 'custom', path: ['limits', 'counters'], message: 'is required: the store does not implement UsageStore (consumeUsage, adjustCredits)' })
        }
        if (options.audit === true && !isAuditStore(options.store)) {
          context.addIssue({ code: 'custom', path: ['audit'], message: 'is true, but the store does not implement AuditStore (listAudit, pruneAudit)' })
        }
        const staticRoles = typeof options.roles === 'function' ? null : options.roles
        if (staticRoles !== null && typeof options.groups !== 'function') for (const [group, roles] of Object.entries(options.groups)) {
          roles.forEach((role, index) => {
            if (!Object.hasOwn(staticRoles, role)) context.addIssue({ code: 'custom', path: ['groups', group, index], message: 'names a role that is not configured' })
          })
        }
      }),
    )
}

function normalisePeppers(pepper: string | Uint8Array | readonly Pepper[] | null | undefined): Pepper[] {
  if (pepper === undefined || pepper === null) return []
  if (typeof pepper === 'string' || pepper instanceof Uint8Array) return [{ id: DEFAULT_PEPPER_ID, secret: pepper }]
  return pepper.map((entry) => ({ id: entry.id, secret: entry.secret }))
}

function defaultChannelErrorHandler(error: unknown): void {
  console.error('keywarden: the cache invalidation channel failed; other instances see changes within the cache ttl', error)
}

function defaultUsageErrorHandler(error: unknown): void {
  console.error('keywarden: writing lastUsedAt failed; the values are kept for the next flush', error)
}

function defaultListenerErrorHandler(error: unknown, eventType: string): void {
  console.error(`keywarden: a listener for the '${eventType}' event threw`, error)
}

/** The resolved options and the pepper secrets, which go to the hasher and nowhere else. */
export interface Configuration {
  readonly options: ResolvedOptions
  readonly peppers: readonly Pepper[]
  /** Usage policies, compiled, and the counter store; kept out of `options`, whose type is public. */
  readonly limits: ResolvedLimits
  /** Where roles and groups come from: the maps in `options`, or the functions given. */
  readonly roleSources: { readonly roles: RoleMap | RoleLookup<RoleMap>; readonly groups: GroupMap | RoleLookup<GroupMap> }
}

function frozenMap(map: Readonly<Record<string, readonly string[]>>): Readonly<Record<string, readonly string[]>> {
  return Object.freeze(Object.fromEntries(Object.entries(map).map(([name, items]) => [name, Object.freeze([...items])])))
}

/** Validates options and fills in defaults. Throws {@link ConfigError} naming every bad option. */
export function resolveOptions(options: KeyManagerOptions): Configuration {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError([{ path: [], message: 'options must be an object' }])
  }
  // Checked before zod, which reads a present `undefined` as "left out".
  if (Object.hasOwn(options, 'pepper') && options.pepper === undefined) {
    throw new ConfigError([{ path: ['pepper'], message: 'is undefined (an unset environment variable?): give the pepper, or null to run without one' }])
  }
  const wildcards = options.scopeWildcards ?? true
  const schema = optionsSchema(wildcards)
  const result = schema.safeParse(options, PARSE_CONTEXT)
  if (!result.success) throw new ConfigError(toIssues(result.error, schema))
  const parsed = result.data
  const quota = parsed.maxKeysPerOwner
  const peppers = Object.freeze(normalisePeppers(parsed.pepper))
  const resolved: ResolvedOptions = Object.freeze({
    store: parsed.store,
    prefix: parsed.prefix,
    environments: Object.freeze([...parsed.environments]),
    roles: typeof parsed.roles === 'function' ? Object.freeze({}) : frozenMap(parsed.roles),
    groups: typeof parsed.groups === 'function' ? Object.freeze({}) : frozenMap(parsed.groups),
    rolesCacheTtlMs: parsed.rolesCacheTtl,
    audit: parsed.audit ?? isAuditStore(parsed.store),
    pepperIds: Object.freeze(peppers.map((pepper) => pepper.id)),
    acceptUnpepperedHashes: parsed.acceptUnpepperedHashes,
    rotation: Object.freeze({ maxGracePeriodMs: parsed.rotation.maxGracePeriod }),
    // An omitted default takes the maximum: keys live as long as the policy allows unless asked otherwise.
    expiry: Object.freeze({ defaultMs: parsed.expiry.default === undefined ? parsed.expiry.max : parsed.expiry.default, maxMs: parsed.expiry.max }),
    limitPolicies: Object.freeze(Object.keys(parsed.limits?.policies ?? {})),
    maxKeysPerOwner: typeof quota === 'number' ? () => quota : quota,
    startLength: parsed.startLength,
    scopeWildcards: parsed.scopeWildcards,
    lastUsedPrecisionMs: parsed.lastUsedPrecision,
    usage: Object.freeze({
      flushIntervalMs: parsed.usage.flushInterval,
      maxPending: parsed.usage.maxPending,
      onError: parsed.usage.onError ?? defaultUsageErrorHandler,
    }),
    cache:
      parsed.cache === undefined
        ? null
        : Object.freeze({
            maxEntries: parsed.cache.maxEntries,
            ttlMs: parsed.cache.ttl,
            negativeTtlMs: parsed.cache.negativeTtl,
            negativeMaxEntries: parsed.cache.negativeMaxEntries,
            channel: parsed.cache.channel,
            onError: parsed.cache.onError ?? defaultChannelErrorHandler,
          }),
    clock: parsed.clock,
    onListenerError: parsed.onListenerError ?? defaultListenerErrorHandler,
  })
  const roleSources = { roles: typeof parsed.roles === 'function' ? parsed.roles : resolved.roles, groups: typeof parsed.groups === 'function' ? parsed.groups : resolved.groups }
  return { options: resolved, peppers, limits: resolveLimits(parsed.limits, parsed.store), roleSources }
}
