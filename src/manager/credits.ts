/**
 * The usage management calls: reading, setting and topping up a balance named by a key or a pool, a
 * new key's starting balance, and purging spent counters. Every balance change is one atomic store
 * step, announced as `credits_changed`.
 */
import { KeyNotFoundError, ValidationError } from '../errors.js'
import type { KeyEventEmitter } from '../events.js'
import { countersOf, type CompiledPolicy, type ResolvedLimits } from '../limits/config.js'
import { creditTargetOf, creditTargetSchema, type CreditTarget } from '../limits/credit-targets.js'
import type { CreditBalance } from '../limits/limit-state.js'
import type { Limiter } from '../limits/limiter.js'
import { balanceId } from '../limits/usage-ids.js'
import type { CreditPool } from '../limits/usage-store.js'
import type { KeyStore, StoredKey } from '../store.js'
import { callStore } from '../store-failure.js'
import type { ApiKey } from '../types.js'
import { parseInput } from '../validation.js'
import { NO_CONTEXT, type ResolvedContext } from '../audit/context.js'
import { CREATE_ROLLED_BACK, type AuditTrail } from './audit-trail.js'
import type { CompareAndSet } from './compare-and-set.js'
import { checkKeyId } from './key-ids.js'

/** What the credits calls need from their KeyManager. */
export interface CreditsParts {
  readonly store: KeyStore
  readonly records: CompareAndSet
  readonly limiter: Limiter
  readonly limits: ResolvedLimits
  readonly events: KeyEventEmitter
  readonly clock: () => number
  readonly project: (record: StoredKey) => ApiKey
  /** Called after a write to a key record (here: a create taken back), e.g. to drop a cached copy. */
  readonly onWritten: (keyId: string) => void
  readonly trail: AuditTrail
}

/** A resolved target: the pool, its next refill, and what events say about it. */
interface ResolvedPool {
  readonly pool: CreditPool
  readonly refillAt: number | null
  readonly target: CreditTarget
  readonly keyId: string | null
  /** Whose balance it is, as audit entries name it. */
  readonly owner: { readonly keyId: string | null; readonly ownerId: string | null; readonly tenantId: string | null }
}

export class Credits {
  constructor(private readonly parts: CreditsParts) {}

  /** The balance `target` names, or `null` when a key is charged no credits at all. */
  async get(target: CreditTarget): Promise<CreditBalance | null> {
    const resolved = await this.#resolve(parseInput(creditTargetSchema, target), false)
    if (resolved === null) return null
    const store = countersOf(this.parts.limits, 'consumeUsage')
    const outcome = await callStore('consumeUsage', () => store.consumeUsage({ now: this.parts.clock(), cost: 0, commit: false, rate: [], credits: resolved.pool }))
    return balance(outcome.credits!.remaining, resolved.refillAt)
  }

  /** Sets (`set`) or changes (`add`, negative debits, never below zero) the balance `target` names. */
  async adjust(target: CreditTarget, mode: 'set' | 'add', amount: number, context: ResolvedContext): Promise<CreditBalance> {
    const parsed = parseInput(creditTargetSchema, target)
    if (!Number.isSafeInteger(amount) || (mode === 'set' && amount < 0)) {
      throw new ValidationError([{ path: ['amount'], message: mode === 'set' ? 'must be an integer >= 0' : 'must be a safe integer' }])
    }
    const resolved = (await this.#resolve(parsed, true))!
    return this.#apply(resolved, mode, amount, context)
  }

  /**
   * Gives a new key its own starting balance (`credits` of create). If the balance cannot be written,
   * the key is deleted again, so a failed create leaves no half-made key.
   */
  async initialise(record: StoredKey, amount: number, context: ResolvedContext): Promise<void> {
    const charged = this.parts.limiter.creditsFor(record, this.#policyOf(record))!
    const { pool, refillAt } = this.parts.limiter.poolFor(charged.rule, charged.id, this.parts.clock(), charged.anchor)
    const owner = { keyId: record.id, ownerId: record.ownerId, tenantId: record.tenantId }
    try {
      await this.#apply({ pool, refillAt, target: { keyId: record.id }, keyId: record.id, owner }, 'set', amount, context)
    } catch (error) {
      // The create's entry is already written: the rollback is recorded too, so the trail tells the truth.
      const rollback = { ...NO_CONTEXT, actor: { type: 'system' as const, id: 'keywarden' }, reason: CREATE_ROLLED_BACK }
      const entry = this.parts.trail.entryFor('deleted', record, {}, rollback, this.parts.clock())
      await this.parts.store.delete(record.id, entry).catch(() => undefined)
      this.parts.onWritten(record.id)
      throw error
    }
  }

  /** Deletes spent counter state where the counter store has no native expiry; 0 where it has. */
  async purge(): Promise<number> {
    const counters = this.parts.limits.counters
    if (counters?.purgeUsage === undefined) return 0
    return callStore('purgeUsage', () => counters.purgeUsage!(this.parts.clock()))
  }

  async #apply(resolved: ResolvedPool, mode: 'set' | 'add', amount: number, context: ResolvedContext): Promise<CreditBalance> {
    const store = countersOf(this.parts.limits, 'adjustCredits')
    const now = this.parts.clock()
    // Only a counter store that is the key store holds the trail, so only then is the entry atomic with the change.
    const audit = (store as unknown) === this.parts.store ? this.parts.trail.creditEntryFor(resolved.owner, context, now) : undefined
    const { previous, remaining } = await callStore('adjustCredits', () => store.adjustCredits({ pool: resolved.pool, now, mode, amount, ...(audit === undefined ? {} : { audit }) }))
    const { events } = this.parts
    if (previous !== remaining && events.has('credits_changed')) {
      events.emit({ type: 'credits_changed', at: new Date(now), target: resolved.target, keyId: resolved.keyId, previous, remaining, cause: mode, actor: context.actor, reason: context.reason })
    }
    return balance(remaining, resolved.refillAt)
  }

  /** The pool a target names. For a key charged nothing yet, `forWrite` gives it a balance of its own. */
  async #resolve(target: CreditTarget, forWrite: boolean): Promise<ResolvedPool | null> {
    const { limiter, store, records, clock } = this.parts
    const now = clock()
    if ('keyId' in target) {
      checkKeyId(target.keyId)
      let record = await callStore('get', () => store.get(target.keyId))
      if (record === null) throw new KeyNotFoundError(target.keyId)
      let charged = limiter.creditsFor(record, this.#policyOf(record))
      if (charged === null) {
        if (!forWrite) return null
        record = (await records.apply(target.keyId, (current) => (current.hasCredits === true ? current : { ...current, hasCredits: true }))).after
        charged = limiter.creditsFor(record, this.#policyOf(record))!
      }
      const { pool, refillAt } = limiter.poolFor(charged.rule, charged.id, now, charged.anchor)
      const named = creditTargetOf(charged.scope, record)
      return { pool, refillAt, target: named, keyId: record.id, owner: 'keyId' in named ? { keyId: record.id, ownerId: record.ownerId, tenantId: record.tenantId } : ownerOf(named) }
    }
    const policy = this.#namedPolicy('policy' in target ? target.policy : undefined)
    const isOwner = 'ownerId' in target
    const subject = isOwner ? { id: '', ownerId: target.ownerId, tenantId: target.tenantId ?? null } : { id: '', ownerId: null, tenantId: target.tenantId }
    const id = balanceId(isOwner ? 'owner' : 'tenant', subject)
    const { pool, refillAt } = limiter.poolFor(policy?.credits ?? null, id, now, 0)
    const named: CreditTarget = isOwner ? { ownerId: target.ownerId, tenantId: target.tenantId ?? null } : { tenantId: target.tenantId }
    return { pool, refillAt, target: named, keyId: null, owner: ownerOf(named) }
  }

  #policyOf(record: StoredKey): CompiledPolicy | null {
    return this.parts.limiter.policyFor(record, () => this.parts.project(record))
  }

  /** The policy a pool call names, or the default when that is a name. */
  #namedPolicy(name: string | undefined): CompiledPolicy | null {
    const { policies, defaultPolicy } = this.parts.limits
    if (name !== undefined) {
      const policy = policies.get(name)
      if (policy === undefined) throw new ValidationError([{ path: ['policy'], message: 'names a policy that is not configured' }])
      return policy
    }
    return typeof defaultPolicy === 'string' ? (policies.get(defaultPolicy) ?? null) : null
  }

}

/** The owner and tenant of a shared pool, as its audit entries name them. */
function ownerOf(target: CreditTarget): ResolvedPool['owner'] {
  if ('keyId' in target) return { keyId: target.keyId, ownerId: null, tenantId: null }
  return { keyId: null, ownerId: 'ownerId' in target ? target.ownerId : null, tenantId: target.tenantId ?? null }
}

function balance(remaining: number, refillAt: number | null): CreditBalance {
  return Object.freeze({ remaining, refillAt: refillAt === null ? null : new Date(refillAt) })
}

