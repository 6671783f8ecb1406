/**
 * The key layout of one namespace. Every key starts with the hash tag `{namespace}`, so all keys of a
 * namespace hash to one Redis Cluster slot and every multi-key script is legal on Cluster.
 *
 * ```text
 * {ns}:key:<id>               hash    one record (fields in record-codec.ts)
 * {ns}:v:<id>                 string  the record's verify snapshot: the whole record as one JSON document,
 *                                     rewritten by every script that changes the hash (record-codec.ts)
 * {ns}:idx:all                zset    every record, ordered by (createdAt, id)
 * {ns}:idx:owner:<owner>      zset    the owner's records, same order
 * {ns}:idx:tenant:<tenant>    zset    the tenant's records, same order
 * {ns}:idx:expiry             zset    non-revoked records that expire, scored by expiresAt, member id
 * {ns}:live:owner:<owner>     set     IDs of the owner's non-revoked records without a tenant: their quota
 *                                     count (0.1.0 kept every tenant's here; migrate() moves those out)
 * {ns}:live:tenant:<tenant>:owner:<owner>
 *                             set     IDs of the owner's non-revoked records in the tenant: their quota count
 * {ns}:meta                   hash    `layout`: '2' once no 0.1.0 owner set holds tenant keys;
 *                                     `migrationCursor`: where an unfinished migrate() resumes;
 *                                     `snapshots`: 'complete' once every record has its snapshot;
 *                                     `snapshotCursor`: where an unfinished snapshot walk resumes
 * {ns}:counter:<counter id>   hash    a rate counter's state: `value`, `at`; expires once it no longer matters
 * {ns}:balance:<pool id>      hash    a credit balance: `remaining`, `refilledAt` (absent while null); no expiry
 * {ns}:audit:entries          hash    the audit trail: field <entry id> (as encodeOrderedId writes it)
 *                                     -> the entry's JSON, exactly as built in TypeScript; written once, never changed
 * {ns}:audit:idx:all          zset    every entry, member <at>:<entry id> at score 0 (auditMember below),
 *                                     so Redis keeps them in (at, id) order by bytes
 * {ns}:audit:idx:key:<key id>       zset  the key's entries (kept after the key is deleted), same members
 * {ns}:audit:idx:tenant:<tenant>    zset  entries whose tenantId is this one
 * {ns}:audit:idx:owner:<owner>      zset  entries whose ownerId is this one
 * {ns}:audit:idx:actor:<actor id>   zset  entries whose actor has this id (of any actor type)
 * {ns}:audit:idx:action:<action>    zset  entries of this action
 * ```
 *
 * The audit trail: each write script (insert, update, delete, adjust-credits) takes an optional entry and
 * writes its JSON and its members in every index it belongs to (the all index, plus one per non-null
 * dimension) in the same script as the change, after all of its checks. `listAudit` walks the index of
 * the query's most selective filter newest first (`ZREVRANGEBYLEX`, with `from`, `to` and `before` as
 * lexicographic bounds) and filters the rest in code; `pruneAudit` walks the all index oldest first and
 * removes each entry with its members in every index, in scripts of bounded size.
 */
import { ConfigError } from '../../src/errors.js'

/** The namespace used when none is given. */
export const DEFAULT_NAMESPACE = 'keywarden'

/** Checks a namespace: it becomes a hash tag, so it must be non-empty and free of braces. */
export function checkNamespace(namespace: unknown): string {
  if (typeof namespace !== 'string' || namespace.length === 0 || /[{}]/.test(namespace)) {
    throw new ConfigError([{ path: ['namespace'], message: 'must be a non-empty string without { or }' }])
  }
  return namespace
}

/**
 * Owner and tenant IDs are arbitrary strings, so they are escaped before they become part of a key:
 * `[A-Za-z0-9._@-]` stay as they are (readable keys for the usual IDs), every other UTF-16 code unit
 * becomes `%` and four hex digits. The mapping is injective (lone surrogates included), and `:`, `{`,
 * `}`, spaces and glob characters never reach a key name.
 */
export function encodeSegment(value: string): string {
  return escapeExcept(value, /[A-Za-z0-9._@-]/)
}

/**
 * Counter and pool IDs (up to 600 characters of anything) as {@link encodeSegment} escapes them, except
 * that `:` stays: it separates the parts of the usual IDs (`rate:pro:minute:key:…`), and the ID is the
 * whole rest of the key name, so it needs no separator of its own. Still injective, since `%` is escaped.
 */
export function encodeUsageId(value: string): string {
  return escapeExcept(value, /[A-Za-z0-9._@:-]/)
}

function escapeExcept(value: string, kept: RegExp): string {
  let out = ''
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!
    out += kept.test(char) ? char : `%${value.charCodeAt(i).toString(16).padStart(4, '0')}`
  }
  return out
}

const float = new DataView(new ArrayBuffer(8))
const SIGN = 1n << 63n
const ALL_BITS = (1n << 64n) - 1n

/**
 * 16 hex digits whose byte order is the numeric order of `value`: the IEEE-754 bits with the sign bit
 * flipped for positives and every bit flipped for negatives. Exact for every number, not only safe
 * integers, and fixed-width, so `<time>:<id>` members sort by time first, then by ID.
 */
export function encodeOrderedNumber(value: number): string {
  float.setFloat64(0, value === 0 ? 0 : value) // -0 and 0 are the same instant
  const bits = float.getBigUint64(0)
  return ((bits & SIGN) === 0n ? bits | SIGN : ~bits & ALL_BITS).toString(16).padStart(16, '0')
}

const MEMBER_ID_OFFSET = 17 // 16 hex digits and ':'

/** The member of the order indexes: all scores are 0, so Redis sorts members by their bytes. */
export function orderMember(createdAt: number, id: string): string {
  return `${encodeOrderedNumber(createdAt)}:${id}`
}

/** The record ID inside an {@link orderMember}. */
export function idOfMember(member: string): string {
  return member.slice(MEMBER_ID_OFFSET)
}

/**
 * An audit entry ID in a form whose byte order is the contract's order of IDs (UTF-16 code units), and
 * that is ASCII, so it sorts the same way on every client: code units below U+007F stay as they are (the
 * usual IDs are unchanged), every other code unit becomes U+007F and four lowercase hex digits. U+007F
 * sorts after every kept unit and the escape has a fixed width, so the order is kept; the mapping is
 * injective and prefix-preserving (lone surrogates included). Plain UTF-8 would order characters above
 * U+FFFF after U+E000-U+FFFF, where UTF-16 orders them before.
 */
export function encodeOrderedId(id: string): string {
  let out = ''
  for (let i = 0; i < id.length; i++) {
    const unit = id.charCodeAt(i)
    out += unit < 0x7f ? id[i]! : `\x7f${unit.toString(16).padStart(4, '0')}`
  }
  return out
}

/** The member of the audit indexes: fixed-width `at`, `:`, the encoded entry ID; all scores are 0. */
export function auditMember(at: number, id: string): string {
  return `${encodeOrderedNumber(at)}:${encodeOrderedId(id)}`
}

/** The entries-hash field (the encoded entry ID) inside an {@link auditMember}. */
export function auditFieldOfMember(member: string): string {
  return member.slice(MEMBER_ID_OFFSET)
}

/** What an audit entry is indexed by, besides the all index; `null` dimensions are in no index. */
export interface AuditDimensions {
  readonly keyId: string | null
  readonly tenantId: string | null
  readonly ownerId: string | null
  readonly actorId: string | null
  readonly action: string
}

/** Key names of one namespace. */
export class KeyLayout {
  /** `{namespace}`: the hash tag every key starts with. */
  readonly hashTag: string
  readonly allIndex: string
  readonly expiryIndex: string
  readonly meta: string
  /** The audit entries hash: encoded entry ID -> entry JSON. */
  readonly auditEntries: string
  /** Every audit entry, in (at, id) order. */
  readonly auditAllIndex: string

  constructor(readonly namespace: string) {
    this.hashTag = `{${namespace}}`
    this.allIndex = `${this.hashTag}:idx:all`
    this.expiryIndex = `${this.hashTag}:idx:expiry`
    this.meta = `${this.hashTag}:meta`
    this.auditEntries = `${this.hashTag}:audit:entries`
    this.auditAllIndex = `${this.hashTag}:audit:idx:all`
  }

  /**
   * The audit index of one filter value. `audit:` is a family of its own, and each dimension a prefix of
   * its own, so no ID can name another index or another family's key.
   */
  auditIndex(dimension: 'key' | 'tenant' | 'owner' | 'actor' | 'action', value: string): string {
    return `${this.hashTag}:audit:idx:${dimension}:${encodeSegment(value)}`
  }

  /** The indexes an entry belongs to besides the all index, in a fixed order (key, tenant, owner, actor, action). */
  auditIndexes(entry: AuditDimensions): (string | null)[] {
    return [
      entry.keyId === null ? null : this.auditIndex('key', entry.keyId),
      entry.tenantId === null ? null : this.auditIndex('tenant', entry.tenantId),
      entry.ownerId === null ? null : this.auditIndex('owner', entry.ownerId),
      entry.actorId === null ? null : this.auditIndex('actor', entry.actorId),
      this.auditIndex('action', entry.action),
    ]
  }

  /** The record hash. IDs stay raw: `{ns}:key:` is a prefix no other key family shares. */
  record(id: string): string {
    return `${this.hashTag}:key:${id}`
  }

  /** The record's verify snapshot, a string beside the hash (`{ns}:v:` is a prefix no other family shares). */
  snapshot(id: string): string {
    return `${this.hashTag}:v:${id}`
  }

  ownerIndex(ownerId: string): string {
    return `${this.hashTag}:idx:owner:${encodeSegment(ownerId)}`
  }

  tenantIndex(tenantId: string): string {
    return `${this.hashTag}:idx:tenant:${encodeSegment(tenantId)}`
  }

  /** The owner's set without a tenant; in 0.1.0 data it may also hold the owner's tenant keys. */
  ownerLive(ownerId: string): string {
    return `${this.hashTag}:live:owner:${encodeSegment(ownerId)}`
  }

  /**
   * A rate counter's state. `counter:` and `balance:` are families of their own, so no counter or
   * balance ID can name a record, an index or the other family's key, whatever it contains.
   */
  counter(counterId: string): string {
    return `${this.hashTag}:counter:${encodeUsageId(counterId)}`
  }

  /** A credit balance. */
  balance(poolId: string): string {
    return `${this.hashTag}:balance:${encodeUsageId(poolId)}`
  }

  /** The set a record of `ownerId` in `tenantId` is counted in: its quota bucket. */
  liveSet(ownerId: string, tenantId: string | null): string {
    if (tenantId === null) return this.ownerLive(ownerId)
    return `${this.hashTag}:live:tenant:${encodeSegment(tenantId)}:owner:${encodeSegment(ownerId)}`
  }
}
