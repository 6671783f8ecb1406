/**
 * The IDs of counters and balances: which keys share one follows from a rule's `per` and the key's
 * owner and tenant. IDs stay short and unambiguous whatever the owner and tenant IDs hold.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js'
import type { LimitScope } from './config.js'

/** The part of a key that decides which shared counters it uses. */
export interface UsageSubject {
  readonly id: string
  readonly ownerId: string | null
  readonly tenantId: string | null
}

/** IDs made of safe characters stay readable; anything else becomes a hash, so no separator can be forged. */
const PLAIN = /^[A-Za-z0-9_.-]{1,64}$/

function part(value: string): string {
  return PLAIN.test(value) ? value : `~${bytesToHex(sha256(utf8ToBytes(value))).slice(0, 40)}`
}

/** The scope a key really uses for `per`: without an owner, `owner` is the key; without a tenant, `tenant` is the owner. */
export function effectiveScope(per: LimitScope, subject: UsageSubject): LimitScope {
  if (per === 'tenant' && subject.tenantId === null) per = 'owner'
  if (per === 'owner' && subject.ownerId === null) per = 'key'
  return per
}

/** The shared part of an ID: `key:<id>`, `owner:<tenant>:<owner>` or `tenant:<tenant>`. */
export function scopeId(per: LimitScope, subject: UsageSubject): string {
  switch (effectiveScope(per, subject)) {
    case 'tenant':
      return `tenant:${part(subject.tenantId!)}`
    case 'owner':
      return `owner:${subject.tenantId === null ? '' : part(subject.tenantId)}:${part(subject.ownerId!)}`
    default:
      return `key:${part(subject.id)}`
  }
}

/** The counter of rule `rule` of policy `policy` for this key. */
export function counterId(policy: string, rule: string, per: LimitScope, subject: UsageSubject): string {
  return `rate:${policy}:${rule}:${scopeId(per, subject)}`
}

/** The balance this key is charged to under `per`. */
export function balanceId(per: LimitScope, subject: UsageSubject): string {
  return `credits:${scopeId(per, subject)}`
}
