/**
 * Deterministic, unbiased base62 strings from the pepper (HMAC-SHA-256 as a PRF), for idempotent retries and cursor MACs.
 */

import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { BASE62_ALPHABET } from '../token/base62.js'

/** Bytes at or above this are skipped, so `byte % 62` stays unbiased (248 = 4 × 62). */
const UNBIASED_LIMIT = 248
const DOMAIN = 'keywarden/derive/v1'

/**
 * Deterministic base62 strings from a server secret: the same `key` and `label` always give the same
 * string, and without `key` it is as unpredictable as a random one (HMAC-SHA-256 as a PRF, expanded
 * with a block counter, bytes mapped by rejection so every character is uniform). Used for
 * idempotent create and rotate, where a retry must reproduce the key ID and secret of the first try.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto'
 * import { deriveBase62 } from './derive.js'
 *
 * const pepper = randomBytes(32)
 * const secret = deriveBase62(pepper, 'secret\0owner-1\0live\0<idempotency key>', 32)
 * deriveBase62(pepper, 'secret\0owner-1\0live\0<idempotency key>', 32) === secret // true: same key, same label
 * ```
 */
export function deriveBase62(key: Uint8Array, label: string, length: number): string {
  let out = ''
  for (let block = 0; out.length < length; block++) {
    const bytes = hmac(sha256, key, utf8ToBytes(`${DOMAIN}\0${block}\0${label}`))
    for (const byte of bytes) {
      if (byte >= UNBIASED_LIMIT) continue
      out += BASE62_ALPHABET[byte % 62]
      if (out.length === length) break
    }
  }
  return out
}
