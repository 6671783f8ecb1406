/**
 * `KeyManager`, the library's facade: it validates input, delegates each mechanism to its module in
 * src/manager/ (creation, reads and cache, compare-and-set, idempotency, quota, rotation, expiry
 * notices, paging, verification, projection, leak reports) and announces what changed.
 */
import { SecretHasher } from './crypto/hash.js'
import { KeyNotFoundError, KeyRevokedError, ValidationError } from './errors.js'
import { KeyEventEmitter, type KeyEventListener, type KeyEventMap, type KeyEventName } from './events.js'
import { inputSchemas, type InputSchemas } from './inputs.js'
import type { ChangeContext } from './audit/audit-store.js'
import type { VersionedChangeContext } from './audit/context.js'
import { AuditTrail, type AuditInput, type AuditPage, type PruneAuditInput } from './manager/audit-trail.js'
import { CompareAndSet } from './manager/compare-and-set.js'
import { KeyChanges } from './manager/key-changes.js'
import { Permissions, type KeyPermissions } from './manager/permissions.js'
import { RoleDirectory, type RoleCatalog } from './policy/role-directory.js'
import { managementDocument, type ManagementDocumentOptions } from './http/management/openapi.js'
import { Creation } from './manager/creation.js'
import { Credits } from './manager/credits.js'
import { oneTripFor } from './manager/recent-keys.js'
import { Limiter } from './limits/limiter.js'
import type { CreditTarget } from './limits/credit-targets.js'
import type { CreditBalance } from './limits/limit-state.js'
import { ExpiryNotices } from './manager/expiry-notices.js'
import { Idempotency } from './manager/idempotency.js'
import { KeyCreation } from './manager/key-creation.js'
import { LeakReports, type LeakReport, type ReportLeakOptions } from './manager/leak-reports.js'
import { checkKeyId } from './manager/key-ids.js'
import { expiringBinding, listBinding, Paging } from './manager/paging.js'
import { publicKey } from './manager/projection.js'
import { Rotation } from './manager/rotation.js'
import { Verifier } from './manager/verification.js'
import { VerifyReads } from './manager/verify-reads.js'
import { resolveOptions, type KeyManagerOptions, type ResolvedOptions } from './options.js'
import { ScopeResolver } from './policy/scopes.js'
import { keyStatus, type KeyStatus, type KeyStore, type StoredKey } from './store.js'
import { callStore } from './store-failure.js'
import { formatToken, TokenParser } from './token/format.js'
import { joinToken, splitToken, type KeyCredential, type SplitToken } from './token/key-pair.js'
import { secretScanningPatternSource, tokenPatternSource } from './token/scanning-pattern.js'
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
  VerifyOptions,
  VerifyResult,
} from './types.js'
import { UsageBuffer } from './usage.js'
import { parseInput, readInput } from './validation.js'

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
  /** The validated, frozen configuration. It holds pepper IDs only, never pepper bytes. */
  readonly options: ResolvedOptions
  /**
   * Matches this configuration's tokens anywhere in a text (the token alone: no edges, anchors or
   * flags), for code inside your app such as a log scrubber: `new RegExp(keys.tokenPattern, 'g')`.
   * JavaScript only; for secret scanners use {@link KeyManager.secretScanningPattern}.
   */
  readonly tokenPattern: RegExp
  /**
   * This configuration's token regex for secret scanners, as a string that means the same in
   * `grep -E`, ripgrep, PCRE, RE2, Hyperscan, Python `re` and JavaScript (no non-capturing groups,
   * no `\b`). Its edges are part of the match: the token is capture group 2. Engines that search a
   * whole text need multi-line mode (`'gm'` in JavaScript, `re.M` in Python). Register it with your
   * scanning provider, and confirm each match with {@link KeyManager.parseToken} (see docs/security.md).
   */
  readonly secretScanningPattern: string

  // Private fields (#): invisible to util.inspect, console.log and JSON.stringify, so the hasher's
  // pepper bytes can never be printed through the manager.
  readonly #store: KeyStore
  readonly #clock: () => number
  readonly #hasher: SecretHasher
  readonly #parser: TokenParser
  readonly #events: KeyEventEmitter
  readonly #schemas: InputSchemas
  readonly #usage: UsageBuffer
  readonly #reads: VerifyReads
  readonly #records: CompareAndSet
  readonly #idempotency: Idempotency
  readonly #creation: Creation
  readonly #rotation: Rotation
  readonly #notices: ExpiryNotices
  readonly #paging: Paging
  readonly #verifier: Verifier
  readonly #credits: Credits
  readonly #trail: AuditTrail
  readonly #roles: RoleDirectory
  readonly #permissions: Permissions
  readonly #changes: KeyChanges
  readonly #leaks: LeakReports
  readonly #keyCreation: KeyCreation

  /** @throws {@link ConfigError} naming every invalid option. */
  constructor(options: KeyManagerOptions) {
    const { options: resolved, peppers, limits, roleSources } = resolveOptions(options)
    this.options = resolved
    const { store, clock, prefix, environments, roles, groups, scopeWildcards } = resolved
    this.#store = store
    this.#clock = clock
    this.#hasher = new SecretHasher(peppers, { acceptUnpeppered: resolved.acceptUnpepperedHashes })
    this.#parser = new TokenParser(prefix, environments)
    this.#events = new KeyEventEmitter((error, event) => resolved.onListenerError(error, event.type))
    this.#roles = new RoleDirectory(roleSources.roles, roleSources.groups, scopeWildcards, resolved.rolesCacheTtlMs, clock)
    this.#schemas = inputSchemas(resolved, limits, this.#roles.dynamic)
    this.tokenPattern = new RegExp(tokenPatternSource(prefix, environments))
    this.secretScanningPattern = secretScanningPatternSource(prefix, environments)
    this.#usage = new UsageBuffer(store, { ...resolved.usage, concurrency: 8 })
    this.#reads = new VerifyReads(store, clock, resolved.cache)
    this.#paging = new Paging(store, this.#hasher)
    this.#trail = new AuditTrail(store, resolved.audit, this.#paging)
    this.#records = new CompareAndSet(store, clock, (keyId) => this.#reads.invalidate(keyId), this.#trail)
    this.#idempotency = new Idempotency(this.#hasher)
    this.#creation = new Creation(store, this.#hasher, this.#idempotency, resolved.startLength, (keyId) => this.#reads.invalidate(keyId), this.#trail)
    this.#rotation = new Rotation(this.#hasher, this.#idempotency, resolved.startLength, resolved.rotation.maxGracePeriodMs)
    this.#notices = new ExpiryNotices(store, this.#records, (record) => this.#publicKey(record))
    const limiter = new Limiter(limits)
    this.#credits = new Credits({
      store,
      records: this.#records,
      limiter,
      limits,
      events: this.#events,
      clock,
      project: (record) => this.#publicKey(record),
      onWritten: (keyId) => this.#reads.invalidate(keyId),
      trail: this.#trail,
    })
    this.#permissions = new Permissions(this.#roles)
    this.#changes = new KeyChanges({
      store,
      records: this.#records,
      trail: this.#trail,
      permissions: this.#permissions,
      rotation: this.#rotation,
      events: this.#events,
      schemas: this.#schemas,
      expiry: resolved.expiry,
      clock,
      project: (record) => this.#publicKey(record),
      token: (record, secret) => this.#token(record, secret),
      onDeleted: (keyId) => this.#reads.invalidate(keyId),
    })
    this.#keyCreation = new KeyCreation({
      options: resolved,
      schemas: this.#schemas,
      clock,
      changes: this.#changes,
      permissions: this.#permissions,
      creation: this.#creation,
      credits: this.#credits,
      events: this.#events,
      project: (record) => this.#publicKey(record),
      token: (record, secret) => this.#token(record, secret),
    })
    this.#leaks = new LeakReports({
      parser: this.#parser,
      store,
      hasher: this.#hasher,
      events: this.#events,
      clock,
      project: (record) => this.#publicKey(record),
      revoke: (id, context) => this.#changes.revokeReporting(id, context),
      disable: (id, context) => this.#changes.setEnabledReporting(id, false, context),
    })
    this.#verifier = new Verifier({
      limiter,
      oneTrip: oneTripFor(store, limits.counters, resolved.cache !== null),
      parser: this.#parser,
      store,
      reads: this.#reads,
      hasher: this.#hasher,
      scopes: new ScopeResolver(roles, groups, scopeWildcards),
      roles: this.#roles,
      events: this.#events,
      usage: this.#usage,
      clock,
      lastUsedPrecisionMs: resolved.lastUsedPrecisionMs,
    })
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
    return this.#events.on(name, listener)
  }

  /** Removes a listener added with {@link KeyManager.on}. */
  off<E extends KeyEventName>(name: E, listener: KeyEventListener<E>): void {
    this.#events.off(name, listener)
  }

  /**
   * Creates a key and returns its record and token. The token holds the only copy of the secret:
   * show it once. Enforces the owner's quota (counted per owner within its tenant) atomically.
   *
   * @throws {@link ValidationError} for bad input (nothing is written), {@link QuotaExceededError},
   *   {@link ConflictError} (with an idempotency key: `idempotency_conflict` for a different request,
   *   `conflict` when concurrent deletes of the key never let it settle), {@link StoreError}.
   * @example
   * ```ts
   * const { key, token } = await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live', roles: ['readonly'] })
   * // The change context names who made it: stored as key.createdBy and on the audit entry.
   * await keys.create({ name: 'Ingest', ownerId: 'u1', environment: 'live' }, { actor: { type: 'user', id: 'u1' }, requestId: 'req_81' })
   * ```
   */
  async create(input: CreateKeyInput, context?: ChangeContext): Promise<IssuedKey> {
    return this.#keyCreation.create(input, context)
  }

  /**
   * Checks a token. Garbage and mistyped tokens are rejected offline (format and checksum) without a
   * store access; otherwise one record is read by key ID and the secret compared in constant time.
   * Then revoked, disabled, expired (valid while `now < expiresAt`), environment and scopes are checked,
   * in that order. Never throws for a bad token; throws {@link StoreError} when the store fails and
   * {@link ValidationError} for options of the wrong shape (a programming error).
   *
   * Also accepts the key as its ID and secret ({@link KeyCredential}, see {@link KeyManager.splitToken}),
   * checked exactly like the token they come from; a malformed pair is rejected as `malformed`.
   *
   * @example
   * ```ts
   * const result = await keys.verify(token, { scopes: ['data:read'], environment: 'live' })
   * if (!result.valid) console.log(result.reason) // e.g. 'expired'
   * ```
   */
  verify(token: string | KeyCredential, options?: VerifyOptions): Promise<VerifyResult> {
    return this.#verifier.verifyToken(token, options)
  }

  /**
   * The key with this ID, or `null` when there is none.
   *
   * @throws {@link ValidationError} naming `id` for something that is not a key ID (a token, say).
   * @example
   * ```ts
   * const key = await keys.get(keyId)
   * ```
   */
  async get(id: string): Promise<ApiKey | null> {
    checkKeyId(id)
    const record = await callStore('get', () => this.#store.get(id))
    return record === null ? null : this.#publicKey(record)
  }

  /**
   * One page of keys matching the filters, ordered by creation time then ID. Pass `nextCursor` back to
   * get the next page, with the same filters; every key present for the whole walk is returned exactly
   * once. A cursor that was altered, or that comes from a query with other filters, is a
   * {@link ValidationError} naming `cursor`.
   *
   * @example
   * ```ts
   * const { items, nextCursor } = await keys.list({ ownerId: 'u1', status: 'active', limit: 20 })
   * ```
   */
  async list(input: ListKeysInput = {}): Promise<KeyPage> {
    const { cursor, limit, ...filters } = parseInput(this.#schemas.list, input)
    const page = await this.#paging.page({ ...filters, now: this.#clock() }, limit, cursor, listBinding(filters))
    return { items: page.records.map((record) => this.#publicKey(record)), nextCursor: page.nextCursor }
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
    const { within, cursor, limit, ...filters } = parseInput(this.#schemas.expiring, input)
    const now = this.#clock()
    const window = { from: now, to: now + within }
    const page = await this.#paging.page({ ...filters, expiresWithin: window, now, order: 'asc' }, limit, cursor, expiringBinding(filters, within))
    const items = page.records.map((record) => this.#publicKey(record))
    return Object.assign([...items], { items, nextCursor: page.nextCursor })
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
    const { within, ...filters } = parseInput(this.#schemas.expiring, window)
    const now = this.#clock()
    return this.#notices.run({ ...filters, expiresWithin: { from: now, to: now + within }, now }, notify, (key) =>
      this.#emit({ type: 'expiring', at: new Date(this.#clock()), key, expiresAt: key.expiresAt! }),
    )
  }

  /**
   * Changes a key's name, description, type, scopes, roles, groups, metadata or expiry. A new expiry is
   * measured from now and must lie within the policy maximum; this is how a key's life is extended.
   * A patch that names no field is a {@link ValidationError} (it is almost always a caller's bug).
   *
   * @throws {@link ValidationError}, {@link KeyNotFoundError}, {@link KeyRevokedError}, {@link StoreError}.
   * @example
   * ```ts
   * await keys.update(keyId, { name: 'Deploy bot', expiresIn: '90d' })
   * // Who and why go to the audit trail; expectedVersion makes it a compare-and-set for the caller:
   * const key = (await keys.get(keyId))!
   * await keys.update(keyId, { groups: ['support'] }, { actor: { type: 'user', id: 'u_42' }, reason: 'Ticket 812', expectedVersion: key.version })
   * ```
   */
  async update(id: string, patch: UpdateKeyInput, context?: VersionedChangeContext): Promise<ApiKey> {
    return this.#changes.update(id, patch, context)
  }

  /**
   * Enables a disabled key; the next verify accepts it again. Does nothing if it is enabled.
   *
   * @example
   * ```ts
   * await keys.enable(keyId)
   * ```
   */
  async enable(id: string, context?: VersionedChangeContext): Promise<ApiKey> {
    return this.#changes.setEnabled(id, true, context)
  }

  /**
   * Disables a key; the next verify rejects it with `disabled`. Reversible with {@link KeyManager.enable}.
   *
   * @example
   * ```ts
   * await keys.disable(keyId, { actor: { type: 'user', id: 'u_42' }, reason: 'Leaked in a public repository' })
   * ```
   */
  async disable(id: string, context?: VersionedChangeContext): Promise<ApiKey> {
    return this.#changes.setEnabled(id, false, context)
  }

  /**
   * Revokes a key, irreversibly. The record stays (for audit, listing and `status: 'revoked'`) but never
   * verifies again and no longer counts against the owner's quota. Revoking a revoked key does nothing.
   * Racing writes (rotations, updates) cannot starve it: it keeps retrying until it lands.
   *
   * @example
   * ```ts
   * await keys.revoke(keyId, { actor: { type: 'service', id: 'secret-scanner' }, reason: 'Found on GitHub' })
   * ```
   */
  async revoke(id: string, context?: ChangeContext): Promise<ApiKey> {
    return this.#changes.revoke(id, context)
  }

  /**
   * Handles a report that a token leaked (a secret scanner's alert, a person's email): a genuine token
   * (`true_positive`: checksum, key and secret confirmed, no use counted) gets its key revoked, or
   * disabled with `action: 'disable'`, as the actor `{ type: 'system', id: 'secret-scanning' }`, and a
   * `leaked` event; anything else is a `false_positive`. The token never reaches a reason, event or error.
   *
   * @throws {@link ValidationError} naming the option at fault (nothing is read), {@link StoreError}.
   * @example
   * ```ts
   * declare function tellOwner(ownerId: string | null, text: string): Promise<void> // the application's own
   *
   * keys.on('leaked', (event) => void tellOwner(event.key.ownerId, `${event.key.name} was found at ${event.url ?? 'an unknown place'} and ${event.action}`))
   * const report = await keys.reportLeak(token, { source: 'commit', url: 'https://github.com/octo/app/blob/4e1f/.env' })
   * // { label: 'true_positive', keyId: 'Ab3dEf6hIj9kLm2n', action: 'revoked' }
   * ```
   */
  reportLeak(token: string, options: ReportLeakOptions = {}): Promise<LeakReport> {
    return this.#leaks.report(token, options)
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
  async delete(id: string, context?: ChangeContext): Promise<void> {
    return this.#changes.delete(id, context)
  }

  /**
   * Replaces a key's secret. The key ID and every setting stay; a new token is returned. The old secret
   * keeps working until `gracePeriod` ends (exclusive; default 0: it stops at once), at most
   * `rotation.maxGracePeriod` (default 7 days) and never past the key's own expiry. At most one old
   * secret is alive: rotating again ends the previous grace period. The result says until when the
   * old secret works (`previousSecretValidUntil`, `null` without a grace period).
   *
   * @throws {@link KeyNotFoundError}, {@link KeyRevokedError}, {@link ValidationError} (also for a grace
   *   period beyond the maximum), {@link StoreError}.
   * @example
   * ```ts
   * const { token } = await keys.rotate(keyId, { gracePeriod: '24h' })
   * ```
   */
  async rotate(id: string, options: RotateOptions = {}): Promise<RotatedKey> {
    return this.#changes.rotate(id, options)
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
      this.#clock(),
    )
  }

  /**
   * The public parts of a token (prefix, environment, key ID), or `null` if it is not a well-formed
   * token of this configuration. Offline: checks the format and checksum only, never the store, and
   * records no use: the way to confirm a token reported as leaked (see docs/security.md).
   *
   * @example
   * ```ts
   * keys.parseToken(token)?.keyId
   * ```
   */
  parseToken(token: string): ParsedToken | null {
    const parts = this.#parser.parse(token)
    return parts === null ? null : { prefix: parts.prefix, environment: parts.environment, keyId: parts.keyId }
  }

  /**
   * A token's key ID and secret (and the environment it names), for products that show or accept the
   * key as a pair, like a user name and a password; `null` for anything that is not a well-formed
   * token. Offline: no store access.
   *
   * @example
   * ```ts
   * const { token } = await keys.create({ name: 'CI', tenantId: 'acme' })
   * const pair = keys.splitToken(token)!
   * const copyText = `key:${pair.keyId}::${pair.secret},tenant id: acme`
   * ```
   */
  splitToken(token: string): SplitToken | null {
    return splitToken(this.#parser, token)
  }

  /**
   * The token for a key ID and secret, with its checksum recomputed: the inverse of
   * {@link KeyManager.splitToken}. `environment` is required when more than one is configured.
   *
   * @throws {@link ValidationError} naming `keyId`, `secret` or `environment` when one is malformed.
   * @example
   * ```ts
   * const pair = { keyId: 'Ab3dEf6hIj9kLm2n', secret: 'Zx8cVb7nMq6wEr5tYu4iOp3aSd2fGh1j' } // as a form sends them
   * const token = keys.joinToken({ ...pair, environment: 'live' })
   * const result = await keys.verify(token)
   * ```
   */
  joinToken(pair: KeyCredential & { readonly environment?: string }): string {
    return joinToken(this.options.prefix, this.options.environments, pair)
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
    return this.#usage.flush()
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
    await Promise.all([this.#usage.close(), this.#reads.close()])
  }

  /**
   * The balance a key is charged to (its own, or the owner or tenant pool its policy names), or a pool
   * by owner or tenant, with its next refill. `null` when the key is charged no credits.
   *
   * @throws {@link KeyNotFoundError}, {@link ValidationError}, {@link StoreError}.
   *
   * @example
   * ```ts
   * const balance = await keys.getCredits({ keyId })
   * const teamPool = await keys.getCredits({ tenantId: 't1' })
   * ```
   */
  getCredits(target: CreditTarget): Promise<CreditBalance | null> {
    return this.#credits.get(target)
  }

  /**
   * Adds `amount` credits to the balance `target` names, atomically; a negative amount debits, never
   * below zero. A key charged no credits yet gets a balance of its own. Emits `credits_changed`.
   *
   * @throws {@link KeyNotFoundError}, {@link ValidationError}, {@link StoreError}.
   *
   * @example
   * ```ts
   * await keys.addCredits({ keyId }, 1000)                      // top-up
   * await keys.addCredits({ ownerId: 'u1', tenantId: 't1' }, -50) // a manual charge
   * ```
   */
  addCredits(target: CreditTarget, amount: number, context?: ChangeContext): Promise<CreditBalance> {
    return this.#credits.adjust(target, 'add', amount, this.#changes.context(context, false))
  }

  /**
   * Sets the balance `target` names to `amount` (an integer >= 0). Emits `credits_changed`.
   *
   * @throws {@link KeyNotFoundError}, {@link ValidationError}, {@link StoreError}.
   *
   * @example
   * ```ts
   * await keys.setCredits({ keyId }, 0) // stop a key's paid usage at once
   * ```
   */
  setCredits(target: CreditTarget, amount: number, context?: ChangeContext): Promise<CreditBalance> {
    return this.#credits.adjust(target, 'set', amount, this.#changes.context(context, false))
  }

  /**
   * Deletes counter states that no longer matter (full buckets, past windows) from a counter store
   * without native expiry (the SQL stores, memory), so it stays bounded; returns how many went.
   * Balances are kept. Stores that expire counters themselves (Redis) return 0. Run it from a timer
   * or a cron job, e.g. hourly.
   *
   * @example
   * ```ts
   * setInterval(() => void keys.purgeUsage().catch(console.error), 60 * 60 * 1000).unref()
   * ```
   */
  purgeUsage(): Promise<number> {
    return this.#credits.purge()
  }

  /**
   * The audit trail, newest first: every change with who made it (`actor`), why, and the fields that
   * really changed. Entries outlive the keys they are about, so a deleted key's history stays.
   *
   * @throws {@link ValidationError} for a bad filter or a cursor of other filters; {@link ConfigError}
   * when the store keeps no audit trail.
   * @example
   * ```ts
   * const { items, nextCursor } = await keys.audit({ keyId, limit: 20 })
   * for (const entry of items) console.info(entry.at, entry.actor?.id, entry.action, entry.changes)
   * ```
   */
  audit(input: AuditInput = {}): Promise<AuditPage> {
    return this.#trail.page(input)
  }

  /**
   * Removes audit entries older than `before`, in bounded batches (each one short store call), and
   * returns how many it removed. Run it on a schedule to keep a retention period.
   *
   * @example
   * ```ts
   * const year = 365 * 24 * 60 * 60 * 1000
   * const removed = await keys.pruneAudit({ before: new Date(Date.now() - year) })
   * ```
   */
  pruneAudit(input: PruneAuditInput): Promise<number> {
    return this.#trail.prune(input)
  }

  /**
   * A key's effective permissions: every scope it holds (its own, its roles', its groups' roles',
   * resolved for its tenant) and where each comes from, for a "view permissions" dialog.
   *
   * @throws {@link KeyNotFoundError} when there is no such key.
   * @example
   * ```ts
   * const { scopes, grants } = await keys.permissions(keyId)
   * const viaRoles = grants.filter((grant) => grant.via === 'role').map((grant) => grant.scope)
   * ```
   */
  async permissions(id: string): Promise<KeyPermissions> {
    checkKeyId(id)
    const record = await callStore('get', () => this.#store.get(id))
    if (record === null) throw new KeyNotFoundError(id)
    return this.#permissions.of(record)
  }

  /**
   * Forgets the cached roles and groups of a tenant (every tenant's when omitted), so the next verify
   * asks the `roles`/`groups` functions again: call it where your app saves a tenant's roles. Other
   * instances see the change within `rolesCacheTtl`.
   *
   * @example
   * ```ts
   * declare const db: { saveRoles(tenantId: string, roles: Record<string, string[]>): Promise<void> }
   * await db.saveRoles('acme', { reader: ['data:read'] })
   * keys.invalidateRoles('acme')
   * ```
   */
  invalidateRoles(tenantId?: string | null): void {
    this.#roles.invalidate(tenantId)
  }

  /**
   * The OpenAPI 3.1 document of the management API over this KeyManager, as the management router
   * serves it at `GET /openapi.json`: every route, status, problem body and the security schemes given.
   *
   * @example
   * ```ts
   * import { writeFile } from 'node:fs/promises'
   *
   * await writeFile('openapi.json', JSON.stringify(keys.openapi({ servers: [{ url: 'https://app.example.com/api/keys' }] }), null, 2))
   * ```
   */
  openapi(options?: ManagementDocumentOptions): Record<string, unknown> {
    return managementDocument(this.options, options)
  }

  /**
   * The roles and groups that apply to a tenant's keys right now: the configured maps, or the
   * `roles`/`groups` functions' answer for the tenant (cached like verify's). For pickers on a
   * settings page and for grant checks.
   *
   * @throws {@link StoreError} when a `roles` or `groups` function fails.
   * @example
   * ```ts
   * const { roles, groups } = await keys.roleCatalog('acme')
   * console.info(Object.keys(roles), Object.keys(groups)) // ['admin', 'readonly'] ['support']
   * ```
   */
  async roleCatalog(tenantId: string | null = null): Promise<RoleCatalog> {
    const { roles, groups } = await this.#roles.resolverFor(tenantId)
    return { roles, groups }
  }

  #publicKey(record: StoredKey): ApiKey {
    return publicKey(record, this.#usage)
  }

  #token(record: StoredKey, secret: string): string {
    return formatToken({ prefix: this.options.prefix, environment: record.environment, keyId: record.id, secret })
  }

  #emit<E extends KeyEventName>(event: KeyEventMap[E]): void {
    this.#events.emit(event)
  }
}
