/**
 * fast-check commands that drive a real KeyManager (on a real store) and the reference model side by
 * side. Every command checks its own outcome against the model, then {@link checkAgreement} checks the
 * whole state: verify of every token ever issued, forged tokens, the key list and the quotas.
 *
 * Commands name keys and tokens by a generated index into what the model has seen so far (modulo its
 * length), so a replayed or shrunk sequence still makes sense although IDs and secrets are random.
 */
import fc from 'fast-check'
import type { KeyManager } from '../../src/index.js'
import type { LimitsOptions } from '../../src/limits/config.js'
import type { CreditBalance, LimitState } from '../../src/limits/limit-state.js'
import type { ApiKey, CreateKeyInput, KeyPage, UpdateKeyInput, VerifyOptions, VerifyResult } from '../../src/types.js'
import { forgeToken, type manualClock } from '../helpers.js'
import {
  type ModelActor,
  DAY,
  HOUR,
  KeyModel,
  MINUTE,
  SECOND,
  type CreateRequest,
  type CreditsTarget,
  type ExpectedBalance,
  type ExpectedLimit,
  type ExpectedVerify,
  type KeyStatus,
  type Refusal,
} from './reference-model.js'

export interface Real {
  readonly keys: KeyManager
  readonly time: ReturnType<typeof manualClock>
}

export type ModelCommand = fc.AsyncCommand<KeyModel, Real>

/** How often each outcome happened, to see what the generated sequences reach (KEYWARDEN_MODEL_STATS=1). */
export const outcomes = new Map<string, number>()

function note(outcome: string): void {
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
}

/** Owners with a quota of 2 (`alice`, `bob`; counted within each tenant), one without (`carol`) and keys without an owner. */
export const QUOTAS: Readonly<Record<string, number>> = { alice: 2, bob: 2 }
const OWNERS = ['alice', 'bob', 'carol', null] as const
/** Two tenants, and keys without one (their tenant-shared limits fall back to the owner, then the key). */
const TENANTS = ['t1', 't2', null] as const

/**
 * The `limits` option of the KeyManager under test, small enough that a handful of verifies of one
 * key (or of one owner's or tenant's keys) meets every refusal. Windows are odd on purpose (1 s with a
 * limit of 3 refills fractions of tokens; 1.5 s and 7 s do not divide the larger clock steps).
 */
export const LIMITS = {
  policies: {
    /** A token bucket: 3 per second, 4 at once. */
    bucket: { rate: [{ name: 'burst', limit: 3, window: 1000, burst: 4 }] },
    /** A fixed window aligned to the epoch: 2 per minute. */
    window: { rate: [{ name: 'minute', limit: 2, window: '1m', algorithm: 'fixed-window' }] },
    /** A bucket shared by an owner within its tenant, a window of 3 an hour shared by a tenant, and an owner pool of 3 credits that never refills. */
    shared: {
      rate: [
        { name: 'owner', limit: 2, window: 7_000, per: 'owner' },
        { name: 'tenant', limit: 3, window: '1h', algorithm: 'fixed-window', per: 'tenant' },
      ],
      credits: { per: 'owner', initial: 3 },
    },
    /** Per-key credits restored to 4 every hour from the key's creation, behind a bucket of 2 per 1.5 s. */
    metered: { rate: [{ name: 'burst', limit: 2, window: 1_500 }], credits: { refill: { amount: 4, interval: '1h' } } },
    /** Tenant-pooled credits: 2 to start, restored to 5 on the 31st of every month (the last day of shorter ones), no rate limit. */
    team: { credits: { per: 'tenant', initial: 2, refill: { amount: 5, every: 'month', day: 31 } } },
    /** The default of keys naming no policy: 4 a day, in a fixed window. */
    basic: { rate: [{ name: 'daily', limit: 4, window: '1d', algorithm: 'fixed-window' }] },
  },
  defaultPolicy: 'basic',
} as const satisfies LimitsOptions
type PolicyName = keyof typeof LIMITS.policies
const POLICY_NAMES = Object.keys(LIMITS.policies) as PolicyName[]
const ENVIRONMENTS = ['live', 'test'] as const
const NAMES = ['CI', 'deploy', 'backup'] as const
const SCOPES = ['data:read', 'data:write', 'billing:*'] as const
/** Scope requirements for verify; `billing` alone is not covered by `billing:*`. */
const REQUIREMENTS = [[], ['data:read'], ['data:write'], ['billing:read'], ['billing'], ['data:read', 'data:write']] as const
/** Lifetimes of a create or an update; `undefined` takes the policy default (90 days). */
const LIFETIMES = [undefined, HOUR, DAY, 30 * DAY] as const
const GRACE_PERIODS = [undefined, 0, MINUTE, HOUR] as const
/** Clock steps chosen to land on expiry and grace boundaries exactly, and just before them. */
const CLOCK_STEPS = [1, SECOND, MINUTE - 1, MINUTE, HOUR, DAY, 30 * DAY] as const
/** Steps within and across the short rate windows: a part of a token, one token (334 ms at 3/s), a window. */
const SHORT_CLOCK_STEPS = [1, 7, 250, 333, 334, SECOND, 1_500, 7_000] as const
const STATUSES: readonly KeyStatus[] = ['active', 'disabled', 'expired', 'revoked']
const ROTATE_IDEMPOTENCY_KEYS = ['model-rotate-key-0001', 'model-rotate-key-0002'] as const

/**
 * Idempotent create "slots": one idempotency key used by two owners (they must get different keys),
 * one without an owner, each with its canonical request. Variants change the request to provoke a
 * conflict when the key exists.
 */
const IDEMPOTENT_SLOTS = [
  { idempotencyKey: 'model-create-key-A-0001', ownerId: 'alice', environment: 'live', name: 'CI', scopes: ['data:read'], roles: [] },
  { idempotencyKey: 'model-create-key-A-0001', ownerId: 'bob', environment: 'live', name: 'CI', scopes: ['data:read'], roles: [] },
  { idempotencyKey: 'model-create-key-B-0002', ownerId: null, environment: 'test', name: 'deploy', scopes: [], roles: ['writer'] },
] as const

type Variant = 'same' | 'renamed' | 'rescoped'

const keyIndex = fc.nat({ max: 63 })
const scopeList = fc.shuffledSubarray([...SCOPES])

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name} ${(error as { code?: string }).code ?? ''} ${error.message}`
  return String(error)
}

/** Runs a call that the model says must be refused, and checks the refusal. */
async function expectRefusal(call: Promise<unknown>, refusal: Refusal, label: string): Promise<void> {
  let error: unknown
  try {
    await call
  } catch (caught) {
    error = caught
  }
  if (error === undefined) throw new Error(`${label}: expected a ${refusal} refusal, but the call succeeded`)
  const code = (error as { code?: unknown }).code
  const message = error instanceof Error ? error.message : ''
  const ok = {
    not_found: code === 'key_not_found',
    revoked: code === 'key_revoked',
    quota_exceeded: code === 'quota_exceeded',
    conflict_rotated: code === 'idempotency_conflict' && message.includes('rotated'),
    conflict_different: code === 'idempotency_conflict' && message.includes('different request'),
    conflict_expired: code === 'idempotency_conflict' && message.includes('24 hours'),
    conflict_deleted: code === 'idempotency_conflict' && message.includes('deleted'),
  }[refusal]
  if (!ok) throw new Error(`${label}: expected a ${refusal} refusal, got ${describeError(error)}`)
  note(`${label.split('(')[0]} refused: ${refusal}`)
}

/** Runs a call that the model says must succeed; a refusal here is a disagreement, with its label. */
async function expectSuccess<T>(call: Promise<T>, label: string): Promise<T> {
  try {
    return await call
  } catch (error) {
    throw new Error(`${label}: expected success, got ${describeError(error)}`, { cause: error })
  }
}

function same(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index])
}

function sorted(list: readonly string[]): string[] {
  return [...list].sort()
}

/** Rate limit states in comparable form: instants as epoch ms. */
function showLimits(limits: readonly LimitState[]): ExpectedLimit[] {
  return limits.map(({ policy, name, limit, remaining, resetAt, windowMs }) => ({ policy, name, limit, remaining, resetAt: resetAt.getTime(), windowMs }))
}

function showBalance(balance: CreditBalance | null): ExpectedBalance | null {
  return balance === null ? null : { remaining: balance.remaining, refillAt: balance.refillAt?.getTime() ?? null }
}

/** The differences between two JSON-able values, as `what: actual != expected`, or `false` when equal. */
function differs(what: string, actual: unknown, expected: unknown): string | false {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)]
  return a !== e && `${what} ${a} != ${e}`
}

/** Throws when a verify answer disagrees with the model's. */
export function agree(actual: VerifyResult, expected: ExpectedVerify, label: string): void {
  const show = (result: VerifyResult) => (result.valid ? 'valid' : result.reason)
  if (!expected.valid) {
    if (actual.valid || actual.reason !== expected.reason || actual.keyId !== expected.keyId) {
      throw new Error(`${label}: verify said ${show(actual)}${actual.valid ? '' : ` (keyId ${actual.keyId})`}, the model says ${expected.reason} (keyId ${expected.keyId})`)
    }
    const problems =
      actual.reason === 'rate_limited' && expected.reason === 'rate_limited'
        ? [
            differs('retryAfterMs', actual.retryAfterMs, expected.retryAfterMs),
            differs('violated', actual.violated, expected.violated),
            differs('limits', showLimits(actual.limits), expected.limits),
          ]
        : actual.reason === 'usage_exceeded' && expected.reason === 'usage_exceeded'
          ? [differs('credits', showBalance(actual.credits), expected.credits), differs('limits', showLimits(actual.limits), expected.limits)]
          : []
    const found = problems.filter(Boolean)
    if (found.length > 0) throw new Error(`${label}: verify said ${actual.reason} as the model does, but: ${found.join('; ')}`)
    return
  }
  if (!actual.valid) {
    const detail = actual.reason === 'rate_limited' ? ` (violated ${actual.violated.join(', ')}, retryAfterMs ${actual.retryAfterMs}, limits ${JSON.stringify(showLimits(actual.limits))})` : actual.reason === 'usage_exceeded' ? ` (credits ${JSON.stringify(showBalance(actual.credits))})` : ''
    throw new Error(`${label}: verify said ${actual.reason}${detail}, the model says valid (limits ${JSON.stringify(expected.limits)}, credits ${expected.credits})`)
  }
  const { key } = actual
  const problems = [
    key.id !== expected.keyId && `id ${key.id} != ${expected.keyId}`,
    key.name !== expected.name && `name ${key.name} != ${expected.name}`,
    !same(key.scopes, expected.scopes) && `scopes ${JSON.stringify(key.scopes)} != ${JSON.stringify(expected.scopes)}`,
    !same(sorted(actual.scopes), sorted(expected.granted)) && `granted ${JSON.stringify(actual.scopes)} != ${JSON.stringify(expected.granted)}`,
    (key.expiresAt?.getTime() ?? null) !== expected.expiresAt && `expiresAt ${key.expiresAt?.toISOString()} != ${expected.expiresAt}`,
    (key.policy ?? null) !== expected.policy && `policy ${key.policy} != ${expected.policy}`,
    differs('limits', showLimits(actual.limits), expected.limits),
    differs('credits', actual.credits?.remaining ?? null, expected.credits),
  ].filter(Boolean)
  if (problems.length > 0) throw new Error(`${label}: verify is valid but disagrees: ${problems.join('; ')}`)
}

/** Throws when a returned public record disagrees with the model's key. */
function agreeKey(key: ApiKey, model: KeyModel, label: string): void {
  const expected = model.keys.get(key.id)
  if (expected === undefined) throw new Error(`${label}: ${key.id} is listed but the model has no such key`)
  const problems = [
    key.name !== expected.name && `name ${key.name} != ${expected.name}`,
    !same(key.scopes, expected.scopes) && `scopes ${JSON.stringify(key.scopes)} != ${JSON.stringify(expected.scopes)}`,
    !same(key.roles, expected.roles) && `roles ${JSON.stringify(key.roles)} != ${JSON.stringify(expected.roles)}`,
    key.ownerId !== expected.ownerId && `ownerId ${key.ownerId} != ${expected.ownerId}`,
    key.tenantId !== expected.tenantId && `tenantId ${key.tenantId} != ${expected.tenantId}`,
    (key.policy ?? null) !== expected.policy && `policy ${key.policy} != ${expected.policy}`,
    key.environment !== expected.environment && `environment ${key.environment} != ${expected.environment}`,
    key.enabled !== expected.enabled && `enabled ${key.enabled} != ${expected.enabled}`,
    (key.revokedAt !== null) !== expected.revoked && `revoked ${key.revokedAt !== null} != ${expected.revoked}`,
    (key.expiresAt?.getTime() ?? null) !== expected.expiresAt && `expiresAt ${key.expiresAt?.getTime()} != ${expected.expiresAt}`,
    key.createdAt.getTime() !== expected.createdAt && `createdAt ${key.createdAt.getTime()} != ${expected.createdAt}`,
  ].filter(Boolean)
  if (problems.length > 0) throw new Error(`${label}: key ${key.id} disagrees with the model: ${problems.join('; ')}`)
}

/**
 * The invariants checked after every command: every token ever issued (and a forged token for every
 * key ID ever issued) verifies as the model says, with `consume: false` so the check moves no
 * counter or credit (the answer still shows where every limit and balance stands); the list holds
 * exactly the model's live keys, and each status filter exactly those with that status; no owner
 * holds more non-revoked keys within a tenant than the quota.
 */
export async function checkAgreement(model: KeyModel, { keys }: Real): Promise<void> {
  // Every read below is independent of the others: issue them together, then judge the answers.
  const forged = model.keyIds.map((keyId) => ({ token: forgeToken(keyId, model.keys.get(keyId)?.environment ?? 'live'), keyId }))
  const owners = Object.entries(QUOTAS)
  const [answers, all, byStatus, byOwner] = await Promise.all([
    Promise.all([...model.tokens, ...forged].map(async ({ token, keyId }) => ({ keyId, token, result: await keys.verify(token, SWEEP) }))),
    keys.list({ limit: 1000 }),
    Promise.all(STATUSES.map((status) => keys.list({ status, limit: 1000 }))),
    Promise.all(owners.map(([ownerId]) => keys.list({ ownerId, limit: 1000 }))),
  ])

  answers.forEach(({ keyId, token, result }, index) => {
    const label = index < model.tokens.length ? `after the command, token #${index}` : `after the command, a forged token for ${keyId}`
    agree(result, model.expectVerify(token, keyId, SWEEP), label)
    note(`sweep: ${result.valid ? 'valid' : result.reason}`)
  })

  for (const key of all.items) agreeKey(key, model, 'list')
  const listed = new Set(all.items.map((key) => key.id))
  const missing = [...model.keys.keys()].filter((id) => !listed.has(id))
  if (missing.length > 0 || listed.size !== all.items.length) throw new Error(`list: missing ${missing.join(', ') || 'nothing'}, ${all.items.length - listed.size} duplicates`)

  // Status filters are evaluated by the store at `now`: the expiry boundary (`expiresAt <= now`) lives there too.
  STATUSES.forEach((status, index) => {
    const ids = byStatus[index]!.items.map((key) => key.id)
    const expected = model.listed({ status }, 'asc')
    if (!same(ids, expected)) throw new Error(`list({ status: ${status} }): got ${JSON.stringify(ids)}, the model expects ${JSON.stringify(expected)}`)
  })

  await checkAuditTrail(model, keys)

  owners.forEach(([ownerId, limit], index) => {
    const owned = byOwner[index]!.items
    if (owned.some((key) => key.ownerId !== ownerId)) throw new Error(`list({ ownerId: ${ownerId} }) returned another owner's key`)
    for (const tenantId of TENANTS) {
      const held = owned.filter((key) => key.tenantId === tenantId && key.revokedAt === null).length
      if (held > limit) throw new Error(`quota: ${ownerId} holds ${held} non-revoked keys in tenant ${tenantId}, the limit is ${limit}`)
      if (held !== model.countFor(ownerId, tenantId)) {
        throw new Error(`list({ ownerId: ${ownerId} }): ${held} non-revoked keys in tenant ${tenantId}, the model counts ${model.countFor(ownerId, tenantId)}`)
      }
    }
  })
}

/**
 * The actor a command acts as: none, a user or a service, picked from the command's own text so that a
 * shrunk or replayed run acts as the same actors.
 */
function actorOf(command: { toString(): string }): ModelActor {
  const text = String(command)
  let sum = 0
  for (let i = 0; i < text.length; i++) sum = (sum + text.charCodeAt(i)) % 3
  return sum === 0 ? null : sum === 1 ? { type: 'user', id: 'model-admin' } : { type: 'service', id: 'model-bot' }
}

function contextOf(actor: ModelActor): { actor?: { type: 'user' | 'service'; id: string } } {
  return actor === null ? {} : { actor: { ...actor } }
}

/** The audit trail, oldest first, must be exactly the entries the model predicts. */
async function checkAuditTrail(model: KeyModel, keys: KeyManager): Promise<void> {
  const items = [...(await keys.audit({ limit: 1000 })).items].reverse()
  const predicted = model.audit
  if (items.length !== predicted.length) {
    throw new Error(`audit: ${items.length} entries (${items.map((entry) => entry.action).join(', ')}), the model expects ${predicted.length} (${predicted.map((entry) => entry.action).join(', ')})`)
  }
  if (new Set(items.map((entry) => entry.id)).size !== items.length) throw new Error('audit: entry IDs repeat')
  items.forEach((entry, index) => {
    const expected = predicted[index]!
    const label = `audit entry #${index} (${expected.action})`
    const seen = { action: entry.action, at: entry.at.getTime(), actor: entry.actor, reason: entry.reason, requestId: entry.requestId }
    const want = { action: expected.action, at: expected.at, actor: expected.actor, reason: null, requestId: null }
    if (JSON.stringify(seen) !== JSON.stringify(want)) throw new Error(`${label}: got ${JSON.stringify(seen)}, the model expects ${JSON.stringify(want)}`)
    if (expected.owned) {
      const owner = [entry.keyId, entry.ownerId, entry.tenantId]
      if (JSON.stringify(owner) !== JSON.stringify([expected.keyId, expected.ownerId, expected.tenantId])) throw new Error(`${label}: names ${JSON.stringify(owner)}`)
    }
    const changes = entry.changes as Record<string, unknown>
    for (const [field, change] of Object.entries(expected.changes)) {
      if (JSON.stringify(changes[field]) !== JSON.stringify(change)) throw new Error(`${label}: ${field} changed ${JSON.stringify(changes[field])}, the model expects ${JSON.stringify(change)}`)
    }
    if (expected.exact && Object.keys(changes).length !== Object.keys(expected.changes).length) {
      throw new Error(`${label}: lists ${Object.keys(changes).join(', ')}, the model expects only ${Object.keys(expected.changes).join(', ')}`)
    }
  })
}

/** The options of the sweep's verifies: evaluate every limit, move nothing. */
const SWEEP = { consume: false } as const

/** Runs one create the model has planned, and records its outcome. */
async function runCreate(model: KeyModel, real: Real, request: CreateRequest, label: string): Promise<void> {
  const input: CreateKeyInput = {
    name: request.name,
    ownerId: request.ownerId,
    ...(request.tenantId === null ? {} : { tenantId: request.tenantId }),
    environment: request.environment,
    scopes: request.scopes,
    roles: request.roles,
    ...(request.expiresInMs === undefined ? {} : { expiresIn: request.expiresInMs }),
    ...(request.idempotencyKey === undefined ? {} : { idempotencyKey: request.idempotencyKey }),
    ...(request.policy === undefined ? {} : { policy: request.policy }),
    ...(request.credits === undefined ? {} : { credits: request.credits }),
  }
  const plan = model.planCreate(request)
  const actor = actorOf(label)
  if (plan.kind === 'refuse') return expectRefusal(real.keys.create(input, contextOf(actor)), plan.refusal, label)
  const { key, token } = await expectSuccess(real.keys.create(input, contextOf(actor)), label)
  if (plan.kind === 'replay') {
    if (key.id !== plan.keyId || token !== plan.token) throw new Error(`${label}: a replay must return the first key and token, got another (${key.id})`)
    note('create: replayed')
    return agreeKey(key, model, label)
  }
  note(plan.reuse === null ? 'create: new key' : 'create: deleted idempotent key created again')
  if (plan.reuse !== null) {
    if (key.id !== plan.reuse.keyId || token !== plan.reuse.token) throw new Error(`${label}: re-creating a deleted idempotent key must give its ID and token again`)
  } else if (model.keyIds.includes(key.id) || model.hasToken(token)) {
    throw new Error(`${label}: a new key reused an ID or token issued before (${key.id})`)
  }
  model.created(request, key.id, token, actor)
  agreeKey(key, model, label)
}

class CreateCommand implements ModelCommand {
  constructor(
    readonly ownerId: string | null,
    readonly environment: string,
    readonly name: string,
    readonly scopes: readonly string[],
    readonly expiresInMs: number | undefined,
    readonly tenantId: string | null = null,
    readonly policy: string | null | undefined = undefined,
    readonly credits: number | undefined = undefined,
  ) {}
  check = () => true
  async run(model: KeyModel, real: Real) {
    const { ownerId, tenantId, environment, name, scopes, expiresInMs, policy, credits } = this
    const request: CreateRequest = { ownerId, tenantId, environment, name, scopes, roles: [], expiresInMs, ...(policy === undefined ? {} : { policy }), ...(credits === undefined ? {} : { credits }) }
    await runCreate(model, real, request, this.toString())
    await checkAgreement(model, real)
  }
  toString() {
    const { ownerId, tenantId, environment, name, scopes, expiresInMs: expiresIn, policy, credits } = this
    return `create(${JSON.stringify({ ownerId, tenantId, environment, name, scopes, expiresIn, policy, credits })})`
  }
}

class IdempotentCreateCommand implements ModelCommand {
  constructor(
    readonly slot: number,
    readonly variant: Variant,
    readonly expiresInMs: number | undefined,
  ) {}
  check = () => true
  async run(model: KeyModel, real: Real) {
    const base = IDEMPOTENT_SLOTS[this.slot]!
    const request: CreateRequest = {
      ...base,
      tenantId: null,
      name: this.variant === 'renamed' ? `${base.name} v2` : base.name,
      scopes: this.variant === 'rescoped' ? [...base.scopes, 'billing:*'] : base.scopes,
      expiresInMs: this.expiresInMs,
    }
    await runCreate(model, real, request, this.toString())
    await checkAgreement(model, real)
  }
  toString() {
    return `createIdempotent(slot ${this.slot}, ${this.variant}, expiresIn ${this.expiresInMs})`
  }
}

/**
 * Verifies one token `repeat` times in a row (so one key meets its limits within one command), with
 * scope and environment requirements, a `cost` and `consume`; each answer is checked against the model.
 * `live` picks the current token of a live key (by index), else any token ever issued.
 */
class VerifyCommand implements ModelCommand {
  constructor(
    readonly tokenIndex: number,
    readonly requirements: VerifyOptions,
    readonly mangle: boolean,
    readonly repeat = 1,
    readonly live = false,
  ) {}
  check = (model: Readonly<KeyModel>) => (this.live ? model.keys.size > 0 : model.tokens.length > 0)
  async run(model: KeyModel, real: Real) {
    const { token, keyId } = this.live ? model.currentToken(this.tokenIndex)! : model.tokens[this.tokenIndex % model.tokens.length]!
    if (this.mangle) {
      // One character changed inside the secret: the checksum rejects it before any store access.
      const at = token.length - 10
      const mangled = token.slice(0, at) + (token[at] === 'a' ? 'b' : 'a') + token.slice(at + 1)
      const result = await real.keys.verify(mangled, this.requirements)
      if (result.valid || result.reason !== 'malformed') throw new Error(`${this}: a mangled token must be malformed, got ${result.valid ? 'valid' : result.reason}`)
      return checkAgreement(model, real)
    }
    for (let attempt = 1; attempt <= this.repeat; attempt++) {
      const result = await real.keys.verify(token, this.requirements)
      agree(result, model.expectVerify(token, keyId, this.requirements), `${this} on ${keyId}, attempt ${attempt}`)
      note(`verify: ${result.valid ? 'valid' : result.reason}`)
      if (!result.valid && result.reason === 'rate_limited') note(`verify: rate_limited by ${result.violated.join(' + ')}`)
      if (result.valid && result.credits !== null) note(`verify: valid, charged credits${result.credits.remaining === 0 ? ' down to 0' : ''}`)
      if (this.requirements.consume === false && result.valid) note('verify: valid, consume false')
    }
    // A verify may write (usage buffer, cache fill, counters): the whole state must still agree afterwards.
    await checkAgreement(model, real)
  }
  toString() {
    const which = this.live ? `current token of live key #${this.tokenIndex}` : `token #${this.tokenIndex}`
    return `verify(${which}, ${JSON.stringify(this.requirements)}${this.mangle ? ', mangled' : ''}${this.repeat > 1 ? `, ${this.repeat} times` : ''})`
  }
}

/** A management call on the key picked by `index`: update, enable, disable, revoke or delete. */
class ManageCommand implements ModelCommand {
  constructor(
    readonly action: 'update' | 'enable' | 'disable' | 'revoke' | 'delete',
    readonly index: number,
    readonly patch: { name?: string; scopes?: readonly string[]; expiresInMs?: number; policy?: string | null } = {},
  ) {}
  check = (model: Readonly<KeyModel>) => model.keyIds.length > 0
  async run(model: KeyModel, real: Real) {
    const id = model.pickKeyId(this.index)!
    const label = `${this} on ${id}`
    const refusal = model.refusalFor(id, { revokedRefuses: this.action !== 'revoke' && this.action !== 'delete' })
    const call = this.call(real.keys, id)
    if (refusal !== null) {
      await expectRefusal(call, refusal, label)
    } else {
      const key = await expectSuccess(call, label)
      note(`${this.action}: done`)
      const actor = actorOf(this)
      if (this.action === 'update') model.update(id, this.patch, actor)
      else if (this.action === 'enable' || this.action === 'disable') model.setEnabled(id, this.action === 'enable', actor)
      else if (this.action === 'revoke') model.revoke(id, actor)
      else model.delete(id, actor)
      if (key !== undefined) agreeKey(key, model, label)
    }
    await checkAgreement(model, real)
  }
  private call(keys: KeyManager, id: string): Promise<ApiKey | undefined> {
    const context = contextOf(actorOf(this))
    switch (this.action) {
      case 'update': {
        const { name, scopes, expiresInMs, policy } = this.patch
        const patch: UpdateKeyInput = { ...(name && { name }), ...(scopes && { scopes }), ...(expiresInMs && { expiresIn: expiresInMs }), ...(policy !== undefined && { policy }) }
        return keys.update(id, patch, context)
      }
      case 'enable':
        return keys.enable(id, context)
      case 'disable':
        return keys.disable(id, context)
      case 'revoke':
        return keys.revoke(id, context)
      case 'delete':
        return keys.delete(id, context).then(() => undefined)
    }
  }
  toString() {
    return `${this.action}(key #${this.index}${this.action === 'update' ? `, ${JSON.stringify(this.patch)}` : ''})`
  }
}

class RotateCommand implements ModelCommand {
  constructor(
    readonly index: number,
    readonly graceMs: number | undefined,
    readonly idempotencyKey: string | undefined,
  ) {}
  check = (model: Readonly<KeyModel>) => model.keyIds.length > 0
  async run(model: KeyModel, real: Real) {
    const id = model.pickKeyId(this.index)!
    const label = `${this} on ${id}`
    const actor = actorOf(this)
    const options = {
      ...(this.graceMs === undefined ? {} : { gracePeriod: this.graceMs }),
      ...(this.idempotencyKey === undefined ? {} : { idempotencyKey: this.idempotencyKey }),
      ...contextOf(actor),
    }
    const refusal = model.refusalFor(id, { revokedRefuses: true })
    if (refusal !== null) {
      await expectRefusal(real.keys.rotate(id, options), refusal, label)
    } else {
      const replay = model.rotationReplay(id, this.idempotencyKey)
      const derivedBefore = model.derivedBefore(id, this.idempotencyKey)
      const { key, token } = await expectSuccess(real.keys.rotate(id, options), label)
      if (key.id !== id) throw new Error(`${label}: rotate returned key ${key.id}`)
      if (replay !== null) {
        note('rotate: replayed')
        if (token !== replay) throw new Error(`${label}: a replayed rotation must return the same token again`)
      } else {
        note(`rotate: ${this.idempotencyKey === undefined ? 'rotated' : derivedBefore === undefined ? 'rotated idempotently' : 'derived a deleted incarnation\'s token again'}`)
        if (derivedBefore !== undefined) {
          if (token !== derivedBefore) throw new Error(`${label}: the same key ID, idempotency key and replaced secret must derive the same token`)
        } else if (model.hasToken(token)) {
          throw new Error(`${label}: the rotation brought back a token issued before`)
        }
        model.rotated(id, token, this.graceMs ?? 0, this.idempotencyKey, actor)
      }
      agreeKey(key, model, label)
    }
    await checkAgreement(model, real)
  }
  toString() {
    return `rotate(key #${this.index}, grace ${this.graceMs}${this.idempotencyKey === undefined ? '' : `, idempotencyKey ${this.idempotencyKey}`})`
  }
}

/** Walks every page of a filtered list, or of `expiring`, and compares the IDs and their order with the model's. */
class ListCommand implements ModelCommand {
  constructor(
    readonly filter: { ownerId?: string; environment?: string; status?: KeyStatus },
    readonly order: 'asc' | 'desc',
    readonly limit: number,
    readonly expiringWithinMs: number | undefined,
  ) {}
  check = () => true
  async run(model: KeyModel, real: Real) {
    const { keys } = real
    const expected = this.expiringWithinMs === undefined ? model.listed(this.filter, this.order) : model.expiring(this.expiringWithinMs)
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page: KeyPage =
        this.expiringWithinMs === undefined
          ? await keys.list({ ...this.filter, order: this.order, limit: this.limit, cursor })
          : await keys.expiring({ within: this.expiringWithinMs, limit: this.limit, cursor })
      for (const key of page.items) agreeKey(key, model, this.toString())
      seen.push(...page.items.map((key) => key.id))
      cursor = page.nextCursor
    } while (cursor !== null && seen.length <= expected.length)
    if (!same(seen, expected)) throw new Error(`${this}: got ${JSON.stringify(seen)}, the model expects ${JSON.stringify(expected)}`)
    note(`${this.expiringWithinMs === undefined ? 'list' : 'expiring'}: ${expected.length === 0 ? 'empty' : expected.length > this.limit ? 'several pages' : 'one page'}`)
    await checkAgreement(model, real)
  }
  toString() {
    return this.expiringWithinMs === undefined
      ? `list(${JSON.stringify({ ...this.filter, order: this.order, limit: this.limit })})`
      : `expiring(within ${this.expiringWithinMs} ms, limit ${this.limit})`
  }
}

/** How a credits command names its balance: a key by index, an owner's pool within a tenant, or a tenant's pool. */
type TargetChoice =
  | { readonly kind: 'key'; readonly index: number }
  | { readonly kind: 'owner'; readonly ownerId: string; readonly tenantId: string | null; readonly omitTenant: boolean; readonly policy: PolicyName | undefined }
  | { readonly kind: 'tenant'; readonly tenantId: string; readonly policy: PolicyName | undefined }

/** Which balance a `{ keyId }` target names before the call, for the stats. */
function keyBalanceKind(model: KeyModel, keyId: string): string {
  const key = model.keys.get(keyId)
  if (key === undefined) return 'deleted key'
  if (key.hasCredits) return "key's own balance"
  return model.chargedPool(key) === null ? 'key charged nothing' : "key's policy pool"
}

/**
 * getCredits / addCredits (negative amounts debit, never below 0) / setCredits on a key's balance or
 * a shared pool; the model predicts the balance and its next refill, or `null`, or `key_not_found`.
 */
class CreditsCommand implements ModelCommand {
  constructor(
    readonly action: 'get' | 'add' | 'set',
    readonly choice: TargetChoice,
    readonly amount: number,
  ) {}
  check = (model: Readonly<KeyModel>) => this.choice.kind !== 'key' || model.keyIds.length > 0
  async run(model: KeyModel, real: Real) {
    const target = this.target(model)
    const label = `${this} on ${JSON.stringify(target)}`
    const kind = 'keyId' in target ? keyBalanceKind(model, target.keyId) : 'ownerId' in target ? 'owner pool' : 'tenant pool'
    const expected = this.action === 'get' ? model.getCredits(target) : model.adjustCredits(target, this.action, this.amount)
    const actor = actorOf(this)
    const context = contextOf(actor)
    const call =
      this.action === 'get' ? real.keys.getCredits(target) : this.action === 'add' ? real.keys.addCredits(target, this.amount, context) : real.keys.setCredits(target, this.amount, context)
    if (expected === 'not_found') {
      await expectRefusal(call, 'not_found', `credits ${this.action}(`)
    } else {
      const actual = showBalance(await expectSuccess(call, label))
      if (this.action !== 'get') model.creditsChanged('keyId' in target ? target.keyId : null, actor)
      const problem = differs('balance', actual, expected)
      if (problem) throw new Error(`${label}: ${problem}`)
      note(`credits ${this.action} (${kind}): ${expected === null ? 'null' : expected.remaining === 0 ? 'empty' : 'some'}${expected?.refillAt == null ? '' : ', refills'}`)
    }
    await checkAgreement(model, real)
  }
  private target(model: KeyModel): CreditsTarget {
    const { choice } = this
    if (choice.kind === 'key') return { keyId: model.pickKeyId(choice.index)! }
    const policy = choice.policy === undefined ? {} : { policy: choice.policy }
    if (choice.kind === 'tenant') return { tenantId: choice.tenantId, ...policy }
    return { ownerId: choice.ownerId, ...(choice.omitTenant && choice.tenantId === null ? {} : { tenantId: choice.tenantId }), ...policy }
  }
  toString() {
    const { choice } = this
    const target = choice.kind === 'key' ? `key #${choice.index}` : JSON.stringify(choice)
    return `${this.action}Credits(${target}${this.action === 'get' ? '' : `, ${this.amount}`})`
  }
}

class AdvanceClockCommand implements ModelCommand {
  constructor(readonly ms: number) {}
  check = () => true
  async run(model: KeyModel, real: Real) {
    model.advance(this.ms)
    real.time.advance(this.ms)
    await checkAgreement(model, real)
  }
  toString() {
    return `advance(${this.ms} ms)`
  }
}

/**
 * Every command, weighted by repetition: creates, idempotent creates, rotations, usage verifies and
 * long clock steps twice, so keys accumulate, age and meet their limits.
 */
export const COMMANDS: fc.Arbitrary<ModelCommand>[] = (() => {
  // Mostly a named policy (the default one, `basic`, included), some keys following the default.
  const policyChoice = fc.constantFrom<PolicyName | null | undefined>(undefined, null, 'bucket', 'bucket', 'window', 'shared', 'shared', 'metered', 'team', 'basic')
  const create = fc
    .tuple(
      fc.constantFrom(...OWNERS),
      fc.constantFrom(...ENVIRONMENTS),
      fc.constantFrom(...NAMES),
      scopeList,
      fc.constantFrom(...LIFETIMES),
      fc.constantFrom(...TENANTS),
      policyChoice,
      fc.option(fc.constantFrom(0, 1, 3), { nil: undefined, freq: 3 }),
    )
    .map(([owner, environment, name, scopes, lifetime, tenant, policy, credits]) => new CreateCommand(owner, environment, name, scopes, lifetime, tenant, policy, credits))
  const idempotentCreate = fc
    .tuple(fc.nat({ max: IDEMPOTENT_SLOTS.length - 1 }), fc.constantFrom<Variant>('same', 'same', 'same', 'renamed', 'rescoped'), fc.constantFrom(...LIFETIMES))
    .map(([slot, variant, lifetime]) => new IdempotentCreateCommand(slot, variant, lifetime))
  const verify = fc
    .tuple(
      keyIndex,
      fc.record({ environment: fc.constantFrom(...ENVIRONMENTS), scopes: fc.constantFrom(...REQUIREMENTS).map((list) => [...list]) }, { requiredKeys: [] }),
      fc.constantFrom(false, false, false, true),
    )
    .map(([index, requirements, mangle]) => new VerifyCommand(index, requirements, mangle))
  // Usage-heavy verifies: no requirements most of the time (so the usage checks are reached), several in a row.
  const verifyUsage = fc
    .tuple(
      keyIndex,
      fc.record(
        {
          cost: fc.constantFrom(0, 1, 1, 1, 2, 3),
          consume: fc.constantFrom(true, true, true, false),
          // Mostly none, so the usage checks are reached; sometimes one that a key may lack.
          scopes: fc.constantFrom<readonly string[]>([], [], [], [], [], [], ...REQUIREMENTS),
        },
        { requiredKeys: ['cost', 'consume', 'scopes'] },
      ),
      fc.constantFrom(1, 2, 3, 4, 6),
      fc.constantFrom(true, true, true, false),
    )
    .map(([index, options, repeat, live]) => new VerifyCommand(index, options.scopes.length > 0 ? { ...options, scopes: [...options.scopes] } : { cost: options.cost, consume: options.consume }, false, repeat, live))
  const update = fc
    // An update names at least one field: an empty patch is a ValidationError (test/key-manager/manage.test.ts).
    .tuple(
      keyIndex,
      fc
        .record({ name: fc.constantFrom(...NAMES), scopes: scopeList, expiresInMs: fc.constantFrom(HOUR, DAY, 30 * DAY), policy: fc.constantFrom<PolicyName | null>(null, ...POLICY_NAMES) }, { requiredKeys: [] })
        .filter((patch) => Object.keys(patch).length > 0),
    )
    .map(([index, patch]) => new ManageCommand('update', index, patch))
  const simple = (action: 'enable' | 'disable' | 'revoke' | 'delete') => keyIndex.map((index) => new ManageCommand(action, index))
  const rotate = fc.tuple(keyIndex, fc.constantFrom(...GRACE_PERIODS)).map(([index, grace]) => new RotateCommand(index, grace, undefined))
  const idempotentRotate = fc
    .tuple(keyIndex, fc.constantFrom(...GRACE_PERIODS), fc.constantFrom(...ROTATE_IDEMPOTENCY_KEYS))
    .map(([index, grace, idempotencyKey]) => new RotateCommand(index, grace, idempotencyKey))
  const advance = fc.constantFrom(...CLOCK_STEPS).map((ms) => new AdvanceClockCommand(ms))
  const advanceShort = fc.constantFrom(...SHORT_CLOCK_STEPS).map((ms) => new AdvanceClockCommand(ms))
  const pool = fc.constantFrom<PolicyName | undefined>(undefined, 'shared', 'team', 'metered')
  const credits = fc
    .tuple(
      fc.constantFrom<'get' | 'add' | 'set'>('get', 'get', 'add', 'add', 'set'),
      fc.oneof(
        { weight: 3, arbitrary: keyIndex.map((index): TargetChoice => ({ kind: 'key', index })) },
        {
          weight: 1,
          arbitrary: fc
            .tuple(fc.constantFrom('alice', 'bob', 'carol'), fc.constantFrom(...TENANTS), fc.boolean(), pool)
            .map(([ownerId, tenantId, omitTenant, policy]): TargetChoice => ({ kind: 'owner', ownerId, tenantId, omitTenant, policy })),
        },
        { weight: 1, arbitrary: fc.tuple(fc.constantFrom('t1', 't2'), pool).map(([tenantId, policy]): TargetChoice => ({ kind: 'tenant', tenantId, policy })) },
      ),
      fc.integer({ min: -4, max: 5 }),
    )
    .map(([action, choice, amount]) => new CreditsCommand(action, choice, action === 'set' ? Math.abs(amount) : amount))
  const list = fc
    .tuple(
      fc.oneof(
        fc.constant({}),
        fc.record({ ownerId: fc.constantFrom('alice', 'bob', 'carol') }),
        fc.record({ environment: fc.constantFrom(...ENVIRONMENTS) }),
        fc.record({ status: fc.constantFrom(...STATUSES) }),
        fc.record({ ownerId: fc.constantFrom('alice', 'bob'), status: fc.constantFrom<KeyStatus>('active', 'expired', 'revoked') }),
      ),
      fc.constantFrom<'asc' | 'desc'>('asc', 'desc'),
      fc.integer({ min: 1, max: 3 }),
      fc.option(fc.constantFrom(HOUR, DAY, 30 * DAY), { nil: undefined, freq: 3 }),
    )
    .map(([filter, order, limit, within]) => new ListCommand(filter, order, limit, within))
  return [
    list,
    create,
    create,
    idempotentCreate,
    idempotentCreate,
    verify,
    verifyUsage,
    verifyUsage,
    update,
    simple('enable'),
    simple('disable'),
    simple('revoke'),
    simple('delete'),
    rotate,
    idempotentRotate,
    idempotentRotate,
    advance,
    advance,
    advanceShort,
    credits,
  ]
})()
