import { VerifyCache } from './cache.js'
import { HashMatch, SecretHasher } from './crypto/hash.js'
import { generateKeyId, generateSecret } from './crypto/random.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import { ConfigError, ConflictError, KeyNotFoundError, KeyRevokedError, QuotaExceededError, StoreError, ValidationError } from './errors.js'
import { KeyEventEmitter, type KeyEventListener, type KeyEventMap, type KeyEventName } from './events.js'
import { inputSchemas, type InputSchemas } from './inputs.js'
import { resolveOptions, type KeyManagerOptions, type ResolvedOptions } from './options.js'
import { resolveExpiry } from './policy/expiry.js'
import { ScopeResolver } from './policy/scopes.js'
import { keyStatus, type KeyQuery, type KeyStatus, type KeyStore, type StoredKey } from './store.js'
import { formatToken, KEY_ID_LENGTH, SECRET_LENGTH, secretScanningPatternSource, tokenPatternSource, TokenParser, type TokenParts } from './token/format.js'
import type {
  ApiKey,
  CreateKeyInput,
  ExpiringInput,
  ExpiringKeys,
  IssuedKey,
  RotatedKey,
  KeyPage,
  ListKeysInput,
  NotifyExpiringInput,
  NotifyExpiringResult,
  RotateOptions,
  UpdateKeyInput,
  VerifyFailureReason,
  VerifyOptions,
  VerifyResult,
} from './types.js'
import { asStoreError, callStore } from './store-failure.js'
import { UsageBuffer } from './usage.js'
import { parseInput, readInput, STORABLE_TEXT } from './validation.js'

/** Compare-and-set attempts before a concurrent-update conflict is reported. */
const MAX_UPDATE_ATTEMPTS = 10
/**
 * A revoke is the one change that must not lose to a busy key: once it lands every later write is
 * refused, so retrying it (with backoff) until it wins always ends.
 */
const MAX_REVOKE_ATTEMPTS = 100
/** Upper bound of the random pause between compare-and-set attempts, in ms. */
const MAX_BACKOFF_MS = 20
/** New key IDs drawn before giving up on an (astronomically unlikely) ID collision. */
const MAX_ID_ATTEMPTS = 3
const MAX_ID_LENGTH = 256

/**
 * The public parts of a token: everything but the secret. Returned by {@link KeyManager.parseToken}.
 *
 * @example
 * ```ts
 * import type { ParsedToken } from 'keywarden'
 *
 * const parsed: ParsedToken | null = keys.parseToken(token)
 * if (parsed) console.info({ keyId: parsed.keyId, environment: parsed.environment })
 * ```
 */
export interface ParsedToken {
  /** The brand prefix, e.g. `acme`. */
  readonly prefix: string
  /** The environment named by the token, e.g. `live`. */
  readonly environment: string
  /** The public key ID. */
  readonly keyId: string
}

/**
 * Issues, manages and verifies API keys. One instance per configuration; it is safe to share across
 * requests. All time decisions use the configured clock; the store only keeps records.
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
 *   pepper: process.env.KEY_PEPPER,
 *   expiry: { default: '90d', max: '365d' },
 *   maxKeysPerOwner: (owner) => (owner.role === 'admin' ? Infinity : 2),
 * })
 * const { key, token } = await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live', scopes: ['data:read'] })
 * const result = await keys.verify(token, { scopes: ['data:read'], environment: 'live' })
 * if (result.valid) console.log(result.key.id)
 * ```
 */
export class KeyManager {
  /** The validated, frozen configuration. */
  readonly options: ResolvedOptions
  /**
   * Matches this configuration's tokens anywhere in a text (no anchors, no flags), for secret scanners
   * and log scrubbers: `new RegExp(keys.tokenPattern, 'g')`.
   */
  readonly tokenPattern: RegExp
  /**
   * This configuration's token regex for secret scanners, as a string that means the same in
   * `grep -E`, ripgrep, PCRE, RE2, Hyperscan and Python `re` (no non-capturing groups, no `\b`):
   * register it with your scanning provider. Confirm each match with {@link KeyManager.parseToken}.
   */
  readonly secretScanningPattern: string

  private readonly store: KeyStore
  private readonly clock: () => number
  private readonly hasher: SecretHasher
  private readonly parser: TokenParser
  private readonly scopes: ScopeResolver
  private readonly events: KeyEventEmitter
  private readonly schemas: InputSchemas
  private readonly usage: UsageBuffer
  private readonly cache: VerifyCache | null
  private subscription: Promise<(() => Promise<void>) | undefined> | undefined

  /** @throws {@link ConfigError} naming every invalid option. */
  constructor(options: KeyManagerOptions) {
    this.options = resolveOptions(options)
    const { store, clock, prefix, environments, roles, groups, peppers, scopeWildcards } = this.options
    this.store = store
    this.clock = clock
    this.hasher = new SecretHasher(peppers)
    this.parser = new TokenParser(prefix, environments)
    this.scopes = new ScopeResolver(roles, groups, scopeWildcards)
    this.events = new KeyEventEmitter((error, event) => this.options.onListenerError(error, event.type))
    this.schemas = inputSchemas(this.options)
    this.tokenPattern = new RegExp(tokenPatternSource(prefix, environments))
    this.secretScanningPattern = secretScanningPatternSource(prefix, environments)
    this.usage = new UsageBuffer(store, { ...this.options.usage, concurrency: 8 })
    const cache = this.options.cache
    this.cache = cache === null ? null : new VerifyCache(cache.maxEntries, cache.ttlMs, cache.negativeTtlMs)
  }

  /**
   * Subscribes to a lifecycle event; returns a function that unsubscribes. Listeners run synchronously
   * after the change is stored; one that throws never fails the operation.
   *
   * @example
   * ```ts
   * const stop = keys.on('rejected', (event) => console.warn({ reason: event.reason, keyId: event.keyId }))
   * // later, e.g. on shutdown:
   * stop()
   * ```
   */
  on<E extends KeyEventName>(name: E, listener: KeyEventListener<E>): () => void {
    return this.events.on(name, listener)
  }

  /** Removes a listener added with {@link KeyManager.on}. */
  off<E extends KeyEventName>(name: E, listener: KeyEventListener<E>): void {
    this.events.off(name, listener)
  }

  /**
   * Creates a key and returns its record and token. The token holds the only copy of the secret:
   * show it once. Enforces the owner's quota atomically.
   *
   * @throws {@link ValidationError} for bad input (nothing is written), {@link QuotaExceededError},
   *   {@link ConflictError} (with an idempotency key: `idempotency_conflict` for a different request,
   *   `conflict` when concurrent deletes of the key never let it settle), {@link StoreError}.
   * @example
   * ```ts
   * const { key, token } = await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live', roles: ['readonly'] })
   * ```
   */
  async create(input: CreateKeyInput): Promise<IssuedKey> {
    const parsed = parseInput(this.schemas.create, input)
    const environment = parsed.environment ?? this.soleEnvironment()
    const now = this.clock()
    const expiresAt = resolveExpiry(parsed, this.options.expiry, now, true) ?? null
    const ownerId = parsed.ownerId ?? null
    const tenantId = parsed.tenantId ?? null
    const quota = ownerId === null ? null : this.quotaFor(ownerId, tenantId, environment, parsed.owner)
    if (quota !== null && quota.limit === 0) throw new QuotaExceededError(ownerId!, 0)
    // With an idempotency key, ID and secret are derived from it, so a retry rebuilds the same key.
    const derived =
      parsed.idempotencyKey === undefined
        ? null
        : {
            keyId: this.derive(['create-id', ownerId, tenantId, environment, parsed.idempotencyKey], KEY_ID_LENGTH),
            secret: this.derive(['create-secret', ownerId, tenantId, environment, parsed.idempotencyKey], SECRET_LENGTH),
          }

    // A derived ID that is taken and then gone when read was deleted concurrently (and may be re-created
    // by another retry): that is retried like a compare-and-set, not bounded like random-ID collisions.
    const attempts = derived === null ? MAX_ID_ATTEMPTS : MAX_UPDATE_ATTEMPTS
    for (let attempt = 0; attempt < attempts; attempt++) {
      const keyId = derived?.keyId ?? generateKeyId()
      const secret = derived?.secret ?? generateSecret()
      const record: StoredKey = {
        id: keyId,
        name: parsed.name,
        description: parsed.description ?? null,
        ownerId,
        tenantId,
        environment,
        type: parsed.type ?? null,
        scopes: parsed.scopes ?? [],
        roles: parsed.roles ?? [],
        groups: parsed.groups ?? [],
        metadata: parsed.metadata ?? {},
        start: secret.slice(0, this.options.startLength),
        hash: this.hasher.hash(environment, keyId, secret),
        previousHash: null,
        previousHashExpiresAt: null,
        createdAt: now,
        updatedAt: now,
        expiresAt,
        lastUsedAt: null,
        enabled: true,
        revokedAt: null,
        expiryNoticeFor: null,
        version: 1,
      }
      const outcome = await this.callStore('insert', () => this.store.insert(record, quota))
      if (outcome === 'quota_exceeded') throw new QuotaExceededError(ownerId!, quota!.limit)
      if (outcome === 'inserted') {
        this.invalidate(keyId)
        const key = this.publicKey(record)
        this.emit({ type: 'created', at: new Date(now), key })
        return { key, token: formatToken({ prefix: this.options.prefix, environment, keyId, secret }) }
      }
      if (derived !== null) {
        // The derived ID is taken: by this very request's earlier try (replay it), or it was deleted
        // in between (try the insert again).
        const existing = await this.callStore('get', () => this.store.get(keyId))
        if (existing !== null) return this.replayCreate(existing, record, secret, now)
      }
    }
    // The store worked throughout; concurrent deletes kept taking the key away between insert and read.
    if (derived !== null) throw new ConflictError(derived.keyId)
    throw new StoreError('insert', { cause: new Error(`The store reported ${MAX_ID_ATTEMPTS} fresh random key IDs as taken`) })
  }

  /**
   * Checks a token. Garbage and mistyped tokens are rejected offline (format and checksum) without a
   * store access; otherwise one record is read by key ID and the secret compared in constant time.
   * Then revoked, disabled, expired (valid while `now < expiresAt`), environment and scopes are checked,
   * in that order. Never throws for a bad token; throws {@link StoreError} when the store fails and
   * {@link ValidationError} for options of the wrong shape (a programming error).
   *
   * @example
   * ```ts
   * const result = await keys.verify(token, { scopes: ['data:read'], environment: 'live' })
   * if (!result.valid) console.log(result.reason) // e.g. 'expired'
   * ```
   */
  verify(token: string, options?: VerifyOptions): Promise<VerifyResult> {
    // Not `async`: garbage is the commonest attack traffic, so its answer is one shared, settled promise.
    if (options !== undefined) {
      let problem: ValidationError | null
      try {
        problem = verifyOptionsProblem(options)
      } catch {
        // A getter or proxy trap in the options threw: still a rejection, never a synchronous throw.
        problem = new ValidationError([{ path: [], message: 'verify options could not be read' }])
      }
      if (problem !== null) return Promise.reject(problem)
    }
    const parts = this.parser.parse(token)
    if (parts === null) return this.events.has('rejected') ? Promise.resolve(this.reject('malformed', null)) : MALFORMED
    return this.verifyParts(parts, options)
  }

  private async verifyParts({ environment, keyId, secret }: TokenParts, options: VerifyOptions | undefined): Promise<VerifyResult> {

    const record = this.cache === null ? await this.readForVerify(keyId) : await this.readThroughCache(this.cache, keyId)
    if (record === null) {
      this.hasher.compareWithDummy(environment, keyId, secret)
      return this.reject('unknown_key', keyId)
    }

    const now = this.clock()
    let match = this.hasher.compare(record.hash, environment, keyId, secret)
    let matchedPrevious = false
    if (match === HashMatch.None && record.previousHash !== null && record.previousHashExpiresAt !== null && now < record.previousHashExpiresAt) {
      match = this.hasher.compare(record.previousHash, environment, keyId, secret)
      matchedPrevious = match !== HashMatch.None
    }
    if (match === HashMatch.None) return this.reject('wrong_secret', keyId)
    if (record.revokedAt !== null) return this.reject('revoked', keyId)
    if (!record.enabled) return this.reject('disabled', keyId)
    if (record.expiresAt !== null && now >= record.expiresAt) return this.reject('expired', keyId)
    if (options?.environment !== undefined && options.environment !== record.environment) return this.reject('wrong_environment', keyId)
    const scopes = this.scopes.effectiveScopes(record)
    if (options?.scopes !== undefined && options.scopes.length > 0 && !this.scopes.satisfies(scopes, options.scopes)) {
      return this.reject('insufficient_scope', keyId)
    }

    if (match === HashMatch.Stale) await this.rehash(record, matchedPrevious, environment, secret)
    // No write here: the use goes to the write-behind buffer, at most once per precision interval.
    let lastUsedAt = this.lastUsedAt(record)
    if (lastUsedAt === null || now - lastUsedAt >= this.options.lastUsedPrecisionMs) {
      this.usage.record(keyId, now)
      lastUsedAt = now
    }
    const key = toApiKey(record, lastUsedAt)
    if (this.events.has('verified')) this.events.emit({ type: 'verified', at: new Date(now), key })
    return { valid: true, key, scopes }
  }

  /**
   * The key with this ID, or `null` when there is none.
   *
   * @example
   * ```ts
   * const key = await keys.get(keyId)
   * ```
   */
  async get(id: string): Promise<ApiKey | null> {
    checkId(id)
    const record = await this.callStore('get', () => this.store.get(id))
    return record === null ? null : this.publicKey(record)
  }

  /**
   * One page of keys matching the filters, ordered by creation time then ID. Pass `nextCursor` back to
   * get the next page; every key present for the whole walk is returned exactly once.
   *
   * @example
   * ```ts
   * const { items, nextCursor } = await keys.list({ ownerId: 'u1', status: 'active', limit: 20 })
   * ```
   */
  async list(input: ListKeysInput = {}): Promise<KeyPage> {
    const { cursor, limit, ...filters } = parseInput(this.schemas.list, input)
    return this.page({ ...filters, now: this.clock(), limit }, cursor)
  }

  /**
   * Keys that are not revoked and expire within the window from now (`now < expiresAt <= now + within`),
   * e.g. to warn their owners. The result is an array of keys that is also a page like
   * {@link KeyManager.list}'s: `items` (the same keys) and `nextCursor` for the next page.
   *
   * @example
   * ```ts
   * for (const key of await keys.expiring({ within: '2d' })) console.log(key.name, key.expiresAt)
   * ```
   */
  async expiring(input: ExpiringInput): Promise<ExpiringKeys> {
    const { within, cursor, limit, ...filters } = parseInput(this.schemas.expiring, input)
    const now = this.clock()
    const page = await this.page({ ...filters, expiresWithin: { from: now, to: now + within }, now, order: 'asc', limit }, cursor)
    return Object.assign([...page.items], page)
  }

  /**
   * Tells owners about keys expiring within the window, once per key and expiry date, however often
   * and from however many processes it runs: each notice is claimed atomically before `notify` is
   * called. If the expiry is extended, the new date is announced again when it comes near. Emits
   * `expiring` for every notice sent.
   *
   * @example
   * ```ts
   * declare const mailer: { send(to: string | null, text: string): Promise<void> } // the application's own
   *
   * // Run hourly from a scheduler:
   * await keys.notifyExpiring({ within: '2d', notify: (key) => mailer.send(key.ownerId, `${key.name} expires soon`) })
   * ```
   */
  async notifyExpiring(input: NotifyExpiringInput): Promise<NotifyExpiringResult> {
    const { notify, ...window } = (readInput(input) ?? {}) as NotifyExpiringInput
    if (typeof notify !== 'function') throw new ValidationError([{ path: ['notify'], message: 'must be a function' }])
    const { within, ...filters } = parseInput(this.schemas.expiring, window)
    const notified: ApiKey[] = []
    const failed: { key: ApiKey; error: unknown }[] = []
    const now = this.clock()
    const query: KeyQuery = { ...filters, expiresWithin: { from: now, to: now + within }, now, order: 'asc', limit: 100 }
    let after: KeyQuery['after']
    for (;;) {
      const batch = await this.callStore('list', () => this.store.list({ ...query, after }))
      for (const candidate of batch) {
        if (candidate.expiryNoticeFor === candidate.expiresAt) continue
        const claimed = await this.claimExpiryNotice(candidate.id, query.expiresWithin!)
        if (claimed === null) continue
        const key = this.publicKey(claimed)
        try {
          await notify(key)
        } catch (error) {
          await this.releaseExpiryNotice(claimed)
          failed.push({ key, error })
          continue
        }
        notified.push(key)
        this.emit({ type: 'expiring', at: new Date(this.clock()), key, expiresAt: key.expiresAt! })
      }
      if (batch.length < query.limit) break
      const last = batch[batch.length - 1]!
      after = { createdAt: last.createdAt, id: last.id }
    }
    return { notified, failed }
  }

  /**
   * Changes a key's name, description, type, scopes, roles, groups, metadata or expiry. A new expiry is
   * measured from now and must lie within the policy maximum; this is how a key's life is extended.
   *
   * @throws {@link ValidationError}, {@link KeyNotFoundError}, {@link KeyRevokedError}, {@link StoreError}.
   * @example
   * ```ts
   * await keys.update(keyId, { name: 'Deploy bot', expiresIn: '90d' })
   * ```
   */
  async update(id: string, patch: UpdateKeyInput): Promise<ApiKey> {
    checkId(id)
    // A field given as `undefined` is treated as omitted, not as a request to erase it.
    const parsed = Object.fromEntries(Object.entries(parseInput(this.schemas.update, patch)).filter(([, value]) => value !== undefined))
    const changes = Object.keys(parsed)
    const { expiresIn, expiresAt, ...fields } = parsed as ReturnType<InputSchemas['update']['parse']>
    const { after, changed } = await this.mutate(id, (current, now) => {
      if (current.revokedAt !== null) throw new KeyRevokedError(id)
      if (changes.length === 0) return current
      const expiry = resolveExpiry({ expiresIn, expiresAt }, this.options.expiry, now, false)
      return {
        ...current,
        ...fields,
        ...(expiry === undefined ? {} : { expiresAt: expiry }),
      }
    })
    const key = this.publicKey(after)
    if (changed) this.emit({ type: 'updated', at: key.updatedAt, key, changes })
    return key
  }

  /**
   * Enables a disabled key; the next verify accepts it again. Does nothing if it is enabled.
   *
   * @example
   * ```ts
   * await keys.enable(keyId)
   * ```
   */
  async enable(id: string): Promise<ApiKey> {
    return this.setEnabled(id, true)
  }

  /**
   * Disables a key; the next verify rejects it with `disabled`. Reversible with {@link KeyManager.enable}.
   *
   * @example
   * ```ts
   * await keys.disable(keyId)
   * ```
   */
  async disable(id: string): Promise<ApiKey> {
    return this.setEnabled(id, false)
  }

  /**
   * Revokes a key, irreversibly. The record stays (for audit, listing and `status: 'revoked'`) but never
   * verifies again and no longer counts against the owner's quota. Revoking a revoked key does nothing.
   * Racing writes (rotations, updates) cannot starve it: it keeps retrying until it lands.
   *
   * @example
   * ```ts
   * await keys.revoke(keyId)
   * ```
   */
  async revoke(id: string): Promise<ApiKey> {
    checkId(id)
    const { after, changed } = await this.mutate(
      id,
      (current, now) =>
        current.revokedAt !== null ? current : { ...current, revokedAt: now, previousHash: null, previousHashExpiresAt: null },
      { attempts: MAX_REVOKE_ATTEMPTS },
    )
    const key = this.publicKey(after)
    if (changed) this.emit({ type: 'revoked', at: key.updatedAt, key })
    return key
  }

  /**
   * Deletes a key for good. Its tokens fail with `unknown_key` from now on.
   *
   * @throws {@link KeyNotFoundError} when there is no such key.
   * @example
   * ```ts
   * await keys.delete(keyId)
   * ```
   */
  async delete(id: string): Promise<void> {
    checkId(id)
    const record = await this.callStore('get', () => this.store.get(id))
    if (record === null) throw new KeyNotFoundError(id)
    const existed = await this.callStore('delete', () => this.store.delete(id))
    this.invalidate(id)
    if (!existed) throw new KeyNotFoundError(id)
    this.emit({ type: 'deleted', at: new Date(this.clock()), key: this.publicKey(record) })
  }

  /**
   * Replaces a key's secret. The key ID and every setting stay; a new token is returned. The old secret
   * keeps working until `gracePeriod` ends (exclusive; default 0: it stops at once). At most one old
   * secret is alive: rotating again ends the previous grace period. The result says until when the
   * old secret works (`previousSecretValidUntil`, `null` without a grace period).
   *
   * @throws {@link KeyNotFoundError}, {@link KeyRevokedError}, {@link ValidationError}, {@link StoreError}.
   * @example
   * ```ts
   * const { token } = await keys.rotate(keyId, { gracePeriod: '24h' })
   * ```
   */
  async rotate(id: string, options: RotateOptions = {}): Promise<RotatedKey> {
    checkId(id)
    const { gracePeriod, idempotencyKey } = parseInput(this.schemas.rotate, options)
    // An idempotent rotation's secret is derived from the key and the hash it replaces, so a retry can
    // tell "already done" (the current hash is that secret's and the previous hash the one it replaced)
    // from "not yet", and a stale retry after a later rotation makes a new secret, never an old one.
    const derive = idempotencyKey === undefined ? null : (hashBefore: string) => this.derive(['rotate-secret', id, idempotencyKey, hashBefore], SECRET_LENGTH)
    if (derive !== null) this.requirePepperForIdempotency()
    let secret = ''
    const { after, changed } = await this.mutate(id, (current, now) => {
      if (current.revokedAt !== null) throw new KeyRevokedError(id)
      if (derive !== null && current.previousHash !== null) {
        const candidate = derive(current.previousHash)
        if (this.hasher.compare(current.hash, current.environment, current.id, candidate) !== HashMatch.None) {
          secret = candidate // this rotation already happened and its answer was lost: the same token again
          return current
        }
      }
      secret = derive === null ? generateSecret() : derive(current.hash)
      // An idempotent rotation keeps the replaced hash even without grace (expired at once, so it never
      // verifies): a retry needs it to recognise its own rotation.
      const keepPrevious = gracePeriod > 0 || derive !== null
      return {
        ...current,
        start: secret.slice(0, this.options.startLength),
        hash: this.hasher.hash(current.environment, current.id, secret),
        previousHash: keepPrevious ? current.hash : null,
        previousHashExpiresAt: keepPrevious ? now + gracePeriod : null,
      }
    })
    const key = this.publicKey(after)
    const previousSecretValidUntil = gracePeriod > 0 && after.previousHashExpiresAt !== null ? new Date(after.previousHashExpiresAt) : null
    if (changed) this.emit({ type: 'rotated', at: key.updatedAt, key, previousSecretValidUntil })
    const token = formatToken({ prefix: this.options.prefix, environment: after.environment, keyId: after.id, secret })
    return { key, token, previousSecretValidUntil }
  }

  /**
   * The status of a key at the current time: `revoked`, `expired`, `disabled` or `active`.
   *
   * @example
   * ```ts
   * const key = await keys.get(keyId)
   * if (key) keys.statusOf(key) // 'active'
   * ```
   */
  statusOf(key: Pick<ApiKey, 'revokedAt' | 'expiresAt' | 'enabled'>): KeyStatus {
    return keyStatus(
      { revokedAt: key.revokedAt?.getTime() ?? null, expiresAt: key.expiresAt?.getTime() ?? null, enabled: key.enabled },
      this.clock(),
    )
  }

  /**
   * The public parts of a token (prefix, environment, key ID), or `null` if it is not a well-formed
   * token of this configuration. Offline: checks the format and checksum only, never the store.
   *
   * @example
   * ```ts
   * keys.parseToken(token)?.keyId
   * ```
   */
  parseToken(token: string): ParsedToken | null {
    const parts = this.parser.parse(token)
    return parts === null ? null : { prefix: parts.prefix, environment: parts.environment, keyId: parts.keyId }
  }

  /**
   * Writes the buffered `lastUsedAt` values now. Never rejects; failures go to `usage.onError`.
   *
   * @example
   * ```ts
   * await keys.flush()
   * ```
   */
  flush(): Promise<void> {
    return this.usage.flush()
  }

  /**
   * Shuts down cleanly: stops the usage timer and writes the buffered `lastUsedAt` values. Call it when
   * the process stops (e.g. on SIGTERM); it does not close the store's client.
   *
   * @example
   * ```ts
   * process.on('SIGTERM', async () => { await keys.close(); process.exit(0) })
   * ```
   */
  async close(): Promise<void> {
    const unsubscribe = await this.subscription?.catch(() => undefined)
    this.subscription = undefined
    await Promise.all([this.usage.close(), unsubscribe?.().catch(this.reportChannelError)])
  }

  private async readForVerify(keyId: string): Promise<StoredKey | null> {
    try {
      return await this.store.get(keyId)
    } catch (error) {
      throw asStoreError('get', error)
    }
  }

  private async readThroughCache(cache: VerifyCache, keyId: string): Promise<StoredKey | null> {
    this.subscribeToChannel()
    const now = this.clock()
    const cached = cache.lookup(keyId, now)
    if (cached !== undefined) return cached.record
    const epoch = cache.begin()
    const record = await this.readForVerify(keyId)
    // The entry's ttl counts from before the read, not from its answer: a slow read must not stretch the bound.
    cache.fill(keyId, record, now, epoch)
    return record
  }

  /** Listens for other instances' changes, once, in the background; until then the ttl bounds staleness. */
  private subscribeToChannel(): void {
    const channel = this.options.cache?.channel
    if (channel === undefined || this.subscription !== undefined) return
    this.subscription = channel.subscribe((keyId) => this.cache?.invalidate(keyId)).catch((error: unknown) => {
      this.reportChannelError(error)
      // Try again after a while, not on every verify; meanwhile the ttl bounds staleness.
      setTimeout(() => (this.subscription = undefined), Math.min(this.options.cache?.ttlMs ?? 1000, 5_000)).unref?.()
      return undefined
    })
  }

  /** Drops the cached copy here and tells other instances. A failed publish never fails the change. */
  private invalidate(keyId: string): void {
    if (this.cache === null) return
    this.cache.invalidate(keyId)
    this.options.cache?.channel?.publish(keyId).catch(this.reportChannelError)
  }

  private readonly reportChannelError = (error: unknown): void => {
    this.options.cache?.onError(error)
  }

  /** The last use known to this process: the stored one or a newer one still in the buffer. */
  private lastUsedAt(record: StoredKey): number | null {
    const pending = this.usage.pendingFor(record.id)
    return pending !== undefined && (record.lastUsedAt === null || pending > record.lastUsedAt) ? pending : record.lastUsedAt
  }

  /** The public record, showing buffered uses that are not written yet. */
  private publicKey(record: StoredKey): ApiKey {
    return toApiKey(record, this.lastUsedAt(record))
  }

  /** A deterministic ID or secret for an idempotent call; needs a pepper, the only secret input. */
  private derive(parts: readonly (string | null)[], length: number): string {
    this.requirePepperForIdempotency()
    return this.hasher.derive(JSON.stringify(parts), length)!
  }

  private requirePepperForIdempotency(): void {
    if (!this.hasher.peppered) {
      throw new ValidationError([{ path: ['idempotencyKey'], message: 'needs the pepper option: idempotent retries derive the key from it' }])
    }
  }

  /** The answer to a retried idempotent create whose key already exists. */
  private replayCreate(existing: StoredKey, attempted: StoredKey, secret: string, now: number): IssuedKey {
    const id = existing.id
    if (this.hasher.compare(existing.hash, existing.environment, id, secret) === HashMatch.None) throw idempotencyConflict(id, 'rotated')
    if (!sameRequest(existing, attempted)) throw idempotencyConflict(id, 'different')
    if (now - existing.createdAt > IDEMPOTENCY_WINDOW_MS) throw idempotencyConflict(id, 'expired')
    const token = formatToken({ prefix: this.options.prefix, environment: existing.environment, keyId: id, secret })
    return { key: this.publicKey(existing), token }
  }

  private soleEnvironment(): string {
    const { environments } = this.options
    if (environments.length !== 1) {
      throw new ValidationError([{ path: ['environment'], message: 'is required when more than one environment is configured' }])
    }
    return environments[0]!
  }

  private quotaFor(ownerId: string, tenantId: string | null, environment: string, owner: Record<string, unknown> | undefined) {
    const limit = this.options.maxKeysPerOwner({ id: ownerId, ...owner }, { ownerId, tenantId, environment })
    if (limit === Infinity) return null
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new ConfigError([{ path: ['maxKeysPerOwner'], message: 'returned something other than a non-negative integer or Infinity' }])
    }
    return { ownerId, tenantId, limit }
  }

  private async setEnabled(id: string, enabled: boolean): Promise<ApiKey> {
    checkId(id)
    const { after, changed } = await this.mutate(id, (current) => {
      if (current.revokedAt !== null) throw new KeyRevokedError(id)
      return current.enabled === enabled ? current : { ...current, enabled }
    })
    const key = this.publicKey(after)
    if (changed) this.emit({ type: enabled ? 'enabled' : 'disabled', at: key.updatedAt, key })
    return key
  }

  /**
   * Read-modify-write with compare-and-set, retried on conflict after a short random pause (so writers
   * racing on one key spread out instead of colliding again). `change` returns the current record
   * unchanged for a no-op, or a new record (version and updatedAt are set here).
   */
  private async mutate(
    id: string,
    change: (current: StoredKey, now: number) => StoredKey,
    options: { touchUpdatedAt?: boolean; attempts?: number } = {},
  ): Promise<{ after: StoredKey; changed: boolean }> {
    const attempts = options.attempts ?? MAX_UPDATE_ATTEMPTS
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await pause(Math.random() * Math.min(MAX_BACKOFF_MS, 2 ** attempt))
      const current = await this.callStore('get', () => this.store.get(id))
      if (current === null) throw new KeyNotFoundError(id)
      const now = this.clock()
      const next = change(current, now)
      if (next === current) return { after: current, changed: false }
      const after: StoredKey = {
        ...next,
        version: current.version + 1,
        updatedAt: options.touchUpdatedAt === false ? current.updatedAt : now,
      }
      const outcome = await this.callStore('update', () => this.store.update(after, current.version))
      if (outcome === 'updated') {
        this.invalidate(id)
        return { after, changed: true }
      }
      if (outcome === 'not_found') throw new KeyNotFoundError(id)
    }
    throw new ConflictError(id)
  }

  private async claimExpiryNotice(id: string, window: { from: number; to: number }): Promise<StoredKey | null> {
    try {
      const { after, changed } = await this.mutate(
        id,
        (current) => {
          const due =
            current.revokedAt === null &&
            current.expiresAt !== null &&
            current.expiresAt > window.from &&
            current.expiresAt <= window.to &&
            current.expiryNoticeFor !== current.expiresAt
          return due ? { ...current, expiryNoticeFor: current.expiresAt } : current
        },
        { touchUpdatedAt: false },
      )
      return changed ? after : null
    } catch (error) {
      if (error instanceof KeyNotFoundError) return null
      throw error
    }
  }

  private async releaseExpiryNotice(claimed: StoredKey): Promise<void> {
    try {
      await this.mutate(
        claimed.id,
        (current) => (current.expiryNoticeFor === claimed.expiryNoticeFor ? { ...current, expiryNoticeFor: null } : current),
        { touchUpdatedAt: false },
      )
    } catch (error) {
      if (!(error instanceof KeyNotFoundError)) throw error
    }
  }

  /** Re-hashes a secret that matched under an older pepper. Best effort: a lost race is harmless. */
  private async rehash(record: StoredKey, matchedPrevious: boolean, environment: string, secret: string): Promise<void> {
    const fresh = this.hasher.hash(environment, record.id, secret)
    const next: StoredKey = matchedPrevious
      ? { ...record, previousHash: fresh, version: record.version + 1 }
      : { ...record, hash: fresh, version: record.version + 1 }
    const outcome = await this.store.update(next, record.version).catch(() => undefined)
    if (outcome === 'updated') this.invalidate(record.id)
  }

  private async page(query: Omit<KeyQuery, 'order' | 'after'> & { order?: KeyQuery['order'] }, cursor: string | null | undefined): Promise<KeyPage> {
    const after = cursor == null ? undefined : decodeCursor(cursor)
    const records = await this.callStore('list', () =>
      this.store.list({ ...query, order: query.order ?? 'asc', after, limit: query.limit + 1 }),
    )
    const items = records.slice(0, query.limit)
    const last = items[items.length - 1]
    const nextCursor = records.length > query.limit && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null
    return { items: items.map((record) => this.publicKey(record)), nextCursor }
  }

  private reject(reason: VerifyFailureReason, keyId: string | null): VerifyResult {
    if (this.events.has('rejected')) this.events.emit({ type: 'rejected', at: new Date(this.clock()), reason, keyId })
    return { valid: false, reason, keyId }
  }

  private emit<E extends KeyEventName>(event: KeyEventMap[E]): void {
    this.events.emit(event)
  }

  private callStore<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return callStore(operation, call)
  }
}

function checkId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH || !STORABLE_TEXT.test(id)) {
    throw new ValidationError([
      { path: ['id'], message: `must be a non-empty string of at most ${MAX_ID_LENGTH} characters, without NUL or unpaired surrogates` },
    ])
  }
}

/** Cheap shape checks instead of zod: verify is the hot path. Bad options are a caller bug, so they reject. */
function verifyOptionsProblem(options: VerifyOptions): ValidationError | null {
  if (typeof options !== 'object' || options === null) {
    return new ValidationError([{ path: [], message: 'verify options must be an object' }])
  }
  const { scopes, environment } = options
  if (scopes !== undefined && (!Array.isArray(scopes) || !scopes.every((scope) => typeof scope === 'string'))) {
    return new ValidationError([{ path: ['scopes'], message: 'must be an array of strings' }])
  }
  if (environment !== undefined && typeof environment !== 'string') {
    return new ValidationError([{ path: ['environment'], message: 'must be a string' }])
  }
  return null
}

/** How long a create can be replayed with its idempotency key (a rotation replays while no other rotation happened). */
const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000

const IDEMPOTENCY_CONFLICTS = {
  different: 'The idempotency key was already used for a different request',
  rotated: 'The idempotency key was already used, and the key has been rotated since',
  expired: 'The idempotency key was already used more than 24 hours ago',
} as const

function idempotencyConflict(keyId: string, kind: keyof typeof IDEMPOTENCY_CONFLICTS): ConflictError {
  return new ConflictError(keyId, IDEMPOTENCY_CONFLICTS[kind], 'idempotency_conflict')
}

/** Whether a stored key is what `attempted` would have created (the expiry instant may differ). */
function sameRequest(existing: StoredKey, attempted: StoredKey): boolean {
  const fields = (record: StoredKey) =>
    JSON.stringify([record.name, record.description, record.ownerId, record.tenantId, record.environment, record.type, record.scopes, record.roles, record.groups, record.metadata])
  return fields(existing) === fields(attempted)
}

/** The answer to every token that does not parse, shared: results are immutable. */
const MALFORMED: Promise<VerifyResult> = Promise.resolve(Object.freeze({ valid: false, reason: 'malformed', keyId: null }))

function toDate(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms)
}

/** Copies only the public fields: the hash never leaves the KeyManager. */
function toApiKey(record: StoredKey, lastUsedAt: number | null): ApiKey {
  return Object.freeze({
    id: record.id,
    name: record.name,
    description: record.description,
    ownerId: record.ownerId,
    tenantId: record.tenantId,
    environment: record.environment,
    type: record.type,
    scopes: record.scopes,
    roles: record.roles,
    groups: record.groups,
    metadata: record.metadata,
    start: record.start,
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
    expiresAt: toDate(record.expiresAt),
    lastUsedAt: toDate(lastUsedAt),
    enabled: record.enabled,
    revokedAt: toDate(record.revokedAt),
  })
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
