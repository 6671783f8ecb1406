/**
 * Cursor paging for `list` and `expiring`. A cursor names a position in the list order and is bound,
 * by a MAC, to the query it came from: a forged cursor, or one from another query (other filters,
 * another tenant, another order), is a ValidationError instead of a position.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import type { SecretHasher } from '../crypto/hash.js'
import { deriveBase62 } from '../crypto/derive.js'
import { ValidationError } from '../errors.js'
import type { KeyQuery, KeyStore, ListPosition, StoredKey } from '../store.js'
import { callStore } from '../store-failure.js'

const MAC_LENGTH = 22 // base62: about 131 bits
const CURSOR_PATTERN = /^k2\.([0-9a-z]{1,12})\.([\x21-\x7e]{1,256})\.([0-9A-Za-z]{22})$/
/** Without a pepper the MAC is keyed with a public constant: still bound to its query, but forgeable. */
const UNKEYED = /* @__PURE__ */ sha256(utf8ToBytes('keywarden/cursor/unkeyed/v1'))

/** What a cursor is bound to: the query's kind and every filter that decides which keys it returns. */
export type CursorBinding = readonly (string | number | null)[]

/** The filters that decide which keys a list query returns. */
type Filters = Pick<KeyQuery, 'ownerId' | 'tenantId' | 'environment' | 'type'>

function filterBinding(filters: Filters): (string | null)[] {
  return [filters.ownerId ?? null, filters.tenantId ?? null, filters.environment ?? null, filters.type ?? null]
}

/** The binding of a `list` query: its filters, status and order. */
export function listBinding(filters: Filters & Pick<KeyQuery, 'status' | 'order'>): CursorBinding {
  return ['list', ...filterBinding(filters), filters.status ?? null, filters.order]
}

/** The binding of an `expiring` query: its filters and window. */
export function expiringBinding(filters: Filters, withinMs: number): CursorBinding {
  return ['expiring', ...filterBinding(filters), withinMs]
}

const FOREIGN = 'is not a cursor returned by this query (it was changed, or it belongs to other filters)'

/** Signs and checks cursors, and reads pages from the store. */
export class Paging {
  constructor(
    private readonly store: KeyStore,
    private readonly hasher: SecretHasher,
  ) {}

  /** Encodes `position` as an opaque cursor for the query described by `binding`. */
  encode(position: ListPosition, binding: CursorBinding): string {
    const createdAt = position.createdAt.toString(36)
    return `k2.${createdAt}.${position.id}.${this.#mac(createdAt, position.id, binding)}`
  }

  /** The position in `cursor`; throws a {@link ValidationError} naming `cursor` if it is not one of ours for this query. */
  decode(cursor: string, binding: CursorBinding): ListPosition {
    const match = CURSOR_PATTERN.exec(cursor)
    const createdAt = match ? parseInt(match[1]!, 36) : NaN
    if (!match || !Number.isSafeInteger(createdAt)) throw new ValidationError([{ path: ['cursor'], message: 'is not a cursor returned by list' }])
    // Not secret-dependent timing: the MAC is recomputed from public parts and compared as a whole string.
    if (this.#mac(match[1]!, match[2]!, binding) !== match[3]) throw new ValidationError([{ path: ['cursor'], message: FOREIGN }])
    return { createdAt, id: match[2]! }
  }

  /**
   * One page of `query` after `cursor`, and the cursor of the next page (`null` on the last). Reads one
   * record more than the limit to know whether another page exists.
   */
  async page(
    query: Omit<KeyQuery, 'after' | 'limit'>,
    limit: number,
    cursor: string | null | undefined,
    binding: CursorBinding,
  ): Promise<{ records: StoredKey[]; nextCursor: string | null }> {
    const after = cursor == null ? undefined : this.decode(cursor, binding)
    const records = await callStore('list', () => this.store.list({ ...query, after, limit: limit + 1 }))
    const items = records.slice(0, limit)
    const last = items[items.length - 1]
    const nextCursor = records.length > limit && last ? this.encode({ createdAt: last.createdAt, id: last.id }, binding) : null
    return { records: items, nextCursor }
  }

  #mac(createdAt: string, id: string, binding: CursorBinding): string {
    const label = JSON.stringify(['cursor', createdAt, id, binding])
    return this.hasher.derive(label, MAC_LENGTH) ?? deriveBase62(UNKEYED, label, MAC_LENGTH)
  }
}
