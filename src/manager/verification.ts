/**
 * The decision behind `verify`: one read by key ID, a constant-time comparison with the current (or,
 * during a grace period, the previous) hash, then revoked, disabled, expired, environment, scopes, rate
 * limits and credits, in that order; a refusal spends nothing on the checks after it. A secret that
 * matched under an older pepper is re-hashed with the current one.
 */
import { HashMatch, type SecretHasher } from '../crypto/hash.js'
import type { KeyEventEmitter } from '../events.js'
import type { RoleDirectory } from '../policy/role-directory.js'
import type { ScopeResolver } from '../policy/scopes.js'
import type { Limiter, UsageDecision, UsagePlan } from '../limits/limiter.js'
import { callStore } from '../store-failure.js'
import type { OneTrip } from './recent-keys.js'
import { creditTargetOf } from '../limits/credit-targets.js'
import type { KeyStore, StoredKey } from '../store.js'
import { ValidationError } from '../errors.js'
import type { TokenParser, TokenParts } from '../token/format.js'
import { isKeyCredential, type KeyCredential } from '../token/key-pair.js'
import type { VerifyFailureReason, VerifyOptions, VerifyResult } from '../types.js'
import type { UsageBuffer } from '../usage.js'
import { knownLastUse, toApiKey } from './projection.js'
import { livePreviousHash } from './rotation.js'
import type { VerifyReads } from './verify-reads.js'

/** What the verifier needs from its KeyManager. */
export interface VerifierParts {
  readonly parser: TokenParser
  readonly store: KeyStore
  readonly reads: VerifyReads
  readonly hasher: SecretHasher
  readonly scopes: ScopeResolver
  /** The roles and groups of each tenant, which turn a key's grants into its effective scopes. */
  readonly roles: RoleDirectory
  readonly events: KeyEventEmitter
  readonly usage: UsageBuffer
  readonly clock: () => number
  readonly lastUsedPrecisionMs: number
  readonly limiter: Limiter
  /** Present when the key store also keeps the counters and can read and charge in one round trip. */
  readonly oneTrip: OneTrip | null
}

/** The reasons a token itself fails for: every one but the usage refusals, which carry more. */
type PlainFailure = Exclude<VerifyFailureReason, 'rate_limited' | 'usage_exceeded'>

export class Verifier {
  constructor(private readonly parts: VerifierParts) {}

  /**
   * Verifies a token. Not `async`: garbage is the commonest attack traffic, so its answer is one
   * shared, settled promise. Options of the wrong shape reject with a {@link ValidationError}.
   */
  verifyToken(token: string | KeyCredential, options: VerifyOptions | undefined): Promise<VerifyResult> {
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
    if (typeof token === 'object' && isKeyCredential(token)) return this.#verifyPair(token, options)
    const parts = this.parts.parser.parse(token)
    if (parts === null) return this.parts.events.has('rejected') ? Promise.resolve(this.reject('malformed', null)) : MALFORMED
    return this.verify(parts, options)
  }

  /**
   * Verifies a parsed token. Rejects only for store failures. Not `async` either: when the read answers
   * at once (a cache hit, a store with `getSync`) and nothing else waits (no limit, no tenant roles to
   * load, no re-hash), the whole decision runs now and the caller awaits one settled promise.
   */
  verify(token: TokenParts, options: VerifyOptions | undefined): Promise<VerifyResult> {
    const oneTrip = this.parts.oneTrip
    if (oneTrip !== null) {
      const recent = oneTrip.recent.get(token.keyId)
      if (recent !== undefined) return this.#verifyRecent(recent, token, options)
    }
    const read = this.parts.reads.readNow(token.keyId)
    if (read instanceof Promise) return read.then((record) => this.#decide(record, token, options))
    return this.#decideNow(read, token, options)
  }

  async #verifyRecent(recent: StoredKey, token: TokenParts, options: VerifyOptions | undefined): Promise<VerifyResult> {
    const answer = await this.#verifyInOneTrip(recent, token, options)
    if ('result' in answer) return answer.result
    return this.#decide(answer.record, token, options)
  }

  /**
   * Verifies a key ID and secret. The environment (part of the hash's domain) is the stored key's: a
   * pair names none, and a key never changes environment.
   */
  #verifyPair({ keyId, secret }: KeyCredential, options: VerifyOptions | undefined): Promise<VerifyResult> {
    const recent = this.parts.oneTrip?.recent.get(keyId)
    if (recent !== undefined) return this.verify({ prefix: '', environment: recent.environment, keyId, secret }, options)
    const read = this.parts.reads.readNow(keyId)
    if (read instanceof Promise) return read.then((record) => this.#decide(record, pairParts(record, keyId, secret), options))
    return this.#decideNow(read, pairParts(read, keyId, secret), options)
  }

  /** `#decide` on a record at hand, as a promise: a throw inside it is a rejection, as in an `async` function. */
  #decideNow(record: StoredKey | null, token: TokenParts, options: VerifyOptions | undefined): Promise<VerifyResult> {
    try {
      const answer = this.#decide(record, token, options)
      return answer instanceof Promise ? answer : Promise.resolve(answer)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * The one-round-trip path for a key verified recently: checks what does not need the store against
   * the record last seen, then one guarded store call reads and charges together. When the guard
   * finds the key changed, the store's answer is the fresh record and the full path runs on it.
   */
  async #verifyInOneTrip(recent: StoredKey, token: TokenParts, options: VerifyOptions | undefined): Promise<{ result: VerifyResult } | { record: StoredKey | null }> {
    const { hasher, usage, clock, limiter, oneTrip } = this.parts
    const resolving = this.#effectiveScopes(recent)
    const scopes = resolving instanceof Promise ? await resolving : resolving
    const now = clock()
    const plan = limiter.applies(recent) ? limiter.plan(recent, () => toApiKey(recent, knownLastUse(recent, usage)), now) : null
    if (plan === null || (options?.environment !== undefined && options.environment !== recent.environment) || !this.#grants(scopes, options)) {
      return { record: await this.parts.reads.read(token.keyId) }
    }
    const cost = options?.cost ?? 1
    const consume = options?.consume !== false
    const request = { ...limiter.request(plan, cost, consume, now), keyId: token.keyId, version: recent.version, hash: hasher.hash(token.environment, token.keyId, token.secret) }
    const answer = await callStore('consumeIfCurrent', () => oneTrip!.store.consumeIfCurrent!(request))
    if (!answer.applied) {
      // A changed key is forgotten (the full path remembers it again); a wrong secret changes nothing.
      if (answer.record?.version !== recent.version) oneTrip!.recent.forget(token.keyId)
      return { record: answer.record }
    }
    const record = { ...recent, lastUsedAt: answer.lastUsedAt }
    return { result: this.#finish(record, scopes, limiter.decide(plan, answer.outcome, cost, consume, now), plan, consume, now) }
  }

  /**
   * The full decision on a record read from the store (or `null`): every check in order, then usage.
   * Synchronous up to the first thing that must wait (tenant roles being loaded, a limit, a re-hash).
   */
  #decide(record: StoredKey | null, token: TokenParts, options: VerifyOptions | undefined): VerifyResult | Promise<VerifyResult> {
    const hasher = this.parts.hasher
    const { environment, keyId, secret } = token
    if (record === null) {
      hasher.compareWithDummy(environment, keyId, secret)
      return this.reject('unknown_key', keyId)
    }

    const now = this.parts.clock()
    let match = hasher.compare(record.hash, environment, keyId, secret)
    let matchedPrevious = false
    const previousHash = match === HashMatch.None ? livePreviousHash(record, now) : null
    if (previousHash !== null) {
      match = hasher.compare(previousHash, environment, keyId, secret)
      matchedPrevious = match !== HashMatch.None
    }
    if (match === HashMatch.None) return this.reject('wrong_secret', keyId)
    if (record.revokedAt !== null) return this.reject('revoked', keyId)
    if (!record.enabled) return this.reject('disabled', keyId)
    if (record.expiresAt !== null && now >= record.expiresAt) return this.reject('expired', keyId)
    if (options?.environment !== undefined && options.environment !== record.environment) return this.reject('wrong_environment', keyId)
    const resolving = this.#effectiveScopes(record)
    if (resolving instanceof Promise) return resolving.then((scopes) => this.#admit(record, scopes, match, matchedPrevious, token, options, now))
    return this.#admit(record, resolving, match, matchedPrevious, token, options, now)
  }

  /** The checks after the key's own: scopes, then rate limits and credits, then the answer. */
  #admit(
    record: StoredKey,
    scopes: readonly string[],
    match: HashMatch,
    matchedPrevious: boolean,
    token: TokenParts,
    options: VerifyOptions | undefined,
    now: number,
  ): VerifyResult | Promise<VerifyResult> {
    if (!this.#grants(scopes, options)) return this.reject('insufficient_scope', token.keyId)
    const consume = options?.consume !== false
    // Unlimited keys (no policy, no default, no own credits) skip all of this: nothing to pay on the hot path.
    if (match === HashMatch.Current && !this.parts.limiter.applies(record)) return this.#finish(record, scopes, null, null, consume, now)
    return this.#charge(record, scopes, match, matchedPrevious, token, options, consume, now)
  }

  /** A limited key is charged; a stale hash is re-hashed; then the answer. */
  async #charge(
    record: StoredKey,
    scopes: readonly string[],
    match: HashMatch,
    matchedPrevious: boolean,
    { environment, secret }: TokenParts,
    options: VerifyOptions | undefined,
    consume: boolean,
    now: number,
  ): Promise<VerifyResult> {
    const { usage, limiter } = this.parts
    const plan = limiter.applies(record) ? limiter.plan(record, () => toApiKey(record, knownLastUse(record, usage)), now) : null
    const decision = plan === null ? null : await limiter.consume(plan, options?.cost ?? 1, consume, now)
    if (match === HashMatch.Stale) {
      await this.#rehash(record, matchedPrevious, environment, secret)
    } else if (plan !== null) {
      // A current match on a limited key: the next verify of it can read and charge in one round trip.
      this.parts.oneTrip?.recent.remember(record)
    }
    return this.#finish(record, scopes, decision, plan, consume, now)
  }

  /** The answer once the checks passed: a usage refusal, or the key with its limits and credits. */
  #finish(record: StoredKey, scopes: readonly string[], decision: UsageDecision | null, plan: UsagePlan | null, consume: boolean, now: number): VerifyResult {
    const { usage, events } = this.parts
    const keyId = record.id
    if (decision !== null) {
      if (decision.refused === 'rate_limited') {
        return this.#refuse({ valid: false, reason: 'rate_limited', keyId, retryAfterMs: decision.retryAfterMs, limits: decision.limits, violated: decision.violated })
      }
      if (decision.refused === 'usage_exceeded') {
        return this.#refuse({ valid: false, reason: 'usage_exceeded', keyId, credits: decision.credits!, limits: decision.limits })
      }
      const change = decision.creditChange ?? null
      if (change !== null && events.has('credits_changed')) {
        events.emit({ type: 'credits_changed', at: new Date(now), target: creditTargetOf(plan!.poolScope!, record), keyId, previous: change.previous, remaining: change.remaining, cause: 'verify' })
      }
    }
    // No write here: the use goes to the write-behind buffer, at most once per precision interval.
    let lastUsedAt = knownLastUse(record, usage)
    if (consume && (lastUsedAt === null || now - lastUsedAt >= this.parts.lastUsedPrecisionMs)) {
      usage.record(keyId, now)
      lastUsedAt = now
    }
    const key = toApiKey(record, lastUsedAt)
    if (events.has('verified')) events.emit({ type: 'verified', at: new Date(now), key })
    if (decision === null) return { valid: true, key, scopes, limits: NO_LIMITS, credits: null }
    const credits = decision.credits == null ? null : { remaining: decision.credits.remaining }
    return { valid: true, key, scopes, limits: decision.limits ?? NO_LIMITS, credits }
  }

  /** Synchronous for fixed roles and cached tenants, so the hot path awaits nothing extra. */
  #effectiveScopes(record: StoredKey): readonly string[] | Promise<readonly string[]> {
    const resolver = this.parts.roles.resolverFor(record.tenantId)
    return resolver instanceof Promise ? resolver.then((loaded) => loaded.effectiveScopes(record)) : resolver.effectiveScopes(record)
  }

  #grants(scopes: readonly string[], options: VerifyOptions | undefined): boolean {
    return options?.scopes === undefined || options.scopes.length === 0 || this.parts.scopes.satisfies(scopes, options.scopes)
  }

  /** The failure result, announced as a `rejected` event when someone listens. */
  reject(reason: PlainFailure, keyId: string | null): VerifyResult {
    return this.#refuse({ valid: false, reason, keyId })
  }

  #refuse(result: VerifyResult & { valid: false }): VerifyResult {
    const { events, clock } = this.parts
    if (events.has('rejected')) events.emit({ type: 'rejected', at: new Date(clock()), reason: result.reason, keyId: result.keyId })
    return result
  }

  /**
   * Re-hashes a secret that matched under an older pepper (or, in the migration window, none). Best
   * effort: a lost race is harmless, the next verify tries again. A re-hash that lands is announced.
   */
  async #rehash(record: StoredKey, matchedPrevious: boolean, environment: string, secret: string): Promise<void> {
    const { store, reads, hasher, events, clock, usage } = this.parts
    const fresh = hasher.hash(environment, record.id, secret)
    const replaced = matchedPrevious ? record.previousHash! : record.hash
    const next: StoredKey = matchedPrevious
      ? { ...record, previousHash: fresh, version: record.version + 1 }
      : { ...record, hash: fresh, version: record.version + 1 }
    const outcome = await store.update(next, record.version).catch(() => undefined)
    if (outcome !== 'updated') return
    reads.invalidate(record.id)
    if (events.has('rehashed')) {
      events.emit({
        type: 'rehashed',
        at: new Date(clock()),
        key: toApiKey(next, knownLastUse(record, usage)),
        fromPepperId: hasher.originOf(replaced),
        // Stale matches happen only with a pepper configured, so there is a current pepper ID.
        toPepperId: hasher.currentOrigin!,
        previousSecret: matchedPrevious,
      })
    }
  }
}

/** Cheap shape checks instead of zod: verify is the hot path. Bad options are a caller bug, so they reject. */
function verifyOptionsProblem(options: VerifyOptions): ValidationError | null {
  if (typeof options !== 'object' || options === null) {
    return new ValidationError([{ path: [], message: 'verify options must be an object' }])
  }
  const { scopes, environment, cost, consume } = options
  if (cost !== undefined && !(Number.isSafeInteger(cost) && cost >= 0)) {
    return new ValidationError([{ path: ['cost'], message: 'must be an integer >= 0' }])
  }
  if (consume !== undefined && typeof consume !== 'boolean') {
    return new ValidationError([{ path: ['consume'], message: 'must be a boolean' }])
  }
  if (scopes !== undefined && (!Array.isArray(scopes) || !scopes.every((scope) => typeof scope === 'string'))) {
    return new ValidationError([{ path: ['scopes'], message: 'must be an array of strings' }])
  }
  if (environment !== undefined && typeof environment !== 'string') {
    return new ValidationError([{ path: ['environment'], message: 'must be a string' }])
  }
  return null
}

const NO_LIMITS: readonly never[] = Object.freeze([])

/** The parts of a key ID and secret pair, in the stored key's environment (none for an unknown key). */
function pairParts(record: StoredKey | null, keyId: string, secret: string): TokenParts {
  return { prefix: '', environment: record?.environment ?? '', keyId, secret }
}

/** The answer to every token that does not parse, shared: results are immutable. */
const MALFORMED: Promise<VerifyResult> = Promise.resolve(Object.freeze({ valid: false, reason: 'malformed', keyId: null }))
