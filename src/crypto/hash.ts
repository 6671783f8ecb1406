/**
 * The stored hash of a secret: HMAC-SHA-256 keyed by the pepper (plain SHA-256 without one), tagged
 * with scheme and pepper ID, and compared in constant time.
 */
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js'
import { constantTimeEqual, constantTimeEqualAt } from './constant-time.js'
import { deriveBase62 } from './derive.js'
import { nodeCrypto } from './native.js'

/**
 * A server-held secret that keys the stored hash. `id` is written into every stored hash so that
 * peppers can be rotated: list the new pepper first and keep the old ones until their keys re-hash.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 *
 * const keys = new KeyManager({
 *   store,
 *   pepper: [
 *     { id: '2025-06', secret: process.env.KEY_PEPPER! },
 *     { id: '2024-11', secret: process.env.KEY_PEPPER_OLD! }, // until every key has re-hashed
 *   ],
 * })
 * ```
 */
export interface Pepper {
  /** Short identifier stored with each hash: letters, digits, `-` and `_`, at most 32 characters. */
  readonly id: string
  /** The secret itself, not empty; 32 random bytes or more recommended (a string is taken as UTF-8). */
  readonly secret: string | Uint8Array
}

/** Identifier given to a pepper passed as a bare string or byte array. */
export const DEFAULT_PEPPER_ID = 'default'

/** Version tag of the hash input layout; bump it if the layout ever changes. */
const SCHEME_VERSION = 'kw1'
const DOMAIN = 'keywarden/v1'

/** Outcome of comparing a secret with a stored hash. */
export const HashMatch = {
  None: 0,
  /** Matches and is already hashed with the current scheme and pepper. */
  Current: 1,
  /** Matches, but was hashed with an older pepper (or none); re-hash it. */
  Stale: 2,
} as const
/** One of the {@link HashMatch} values. */
export type HashMatch = (typeof HashMatch)[keyof typeof HashMatch]

/** Hashes a message to lower-case hex. */
type Digest = (message: string) => string

/** The part of node's `crypto` used here; found without a static import so other platforms load too. */
interface NativeCrypto {
  createHmac(algorithm: 'sha256', key: string | Uint8Array): { update(data: string): { digest(encoding: 'hex'): string } }
  createHash(algorithm: 'sha256'): { update(data: string): { digest(encoding: 'hex'): string } }
  /** One-shot hash (node 20.12+); far cheaper than a Hash object per call. */
  hash?(algorithm: 'sha256', data: string | Uint8Array, outputEncoding: 'hex' | 'latin1'): string
}

/** The part of node's `Buffer` used by the one-shot HMAC. */
interface NativeBuffer extends Uint8Array {
  write(text: string, offset: number, encoding: 'utf8' | 'latin1'): number
  /** `write` for one encoding, without its argument juggling (node, Bun, Deno; looked for, not assumed). */
  utf8Write?(text: string, offset: number): number
  latin1Write?(text: string, offset: number): number
}

const SHA256_BLOCK_BYTES = 64
/** Room for the hashed message after the key block; ours are under 100 bytes (see `message`). */
const MESSAGE_CAPACITY = 256

function nativeCrypto(): NativeCrypto | undefined {
  return nodeCrypto() as NativeCrypto | undefined
}

function keyedDigest(key: Uint8Array, native: NativeCrypto | undefined): Digest {
  // Bytes, encoded once by the caller: handing node a string key costs a conversion (about 1 µs) on every call.
  if (native) return oneShotHmac(key, native) ?? ((message) => native.createHmac('sha256', key).update(message).digest('hex'))
  // @noble/hashes elsewhere: the keyed inner and outer states are computed once; each call clones them.
  const prepared = hmac.create(sha256, key)
  return (message) => bytesToHex(prepared.clone().update(utf8ToBytes(message)).digest())
}

/**
 * HMAC-SHA-256 (RFC 2104) from two one-shot hashes over preallocated buffers: H(K^opad || H(K^ipad || m)).
 * Same digest as `createHmac`, at about a third of its cost, because node's one-shot `crypto.hash`
 * skips the Hash object that `createHmac` builds per call. Returns `undefined` where `crypto.hash`
 * or `Buffer` is missing.
 */
function oneShotHmac(key: Uint8Array, native: NativeCrypto): Digest | undefined {
  const hash = native.hash?.bind(native)
  const BufferClass = (globalThis as { Buffer?: { alloc(size: number): NativeBuffer } }).Buffer
  if (hash === undefined || BufferClass === undefined) return undefined
  // A key longer than one block is hashed first, as RFC 2104 says.
  const block = key.length > SHA256_BLOCK_BYTES ? sha256(key) : key
  const inner = BufferClass.alloc(SHA256_BLOCK_BYTES + MESSAGE_CAPACITY)
  const outer = BufferClass.alloc(SHA256_BLOCK_BYTES + 32)
  for (let i = 0; i < SHA256_BLOCK_BYTES; i++) {
    inner[i] = (block[i] ?? 0) ^ 0x36
    outer[i] = (block[i] ?? 0) ^ 0x5c
  }
  const slow = (message: string) => native.createHmac('sha256', key).update(message).digest('hex')
  const utf8Write = inner.utf8Write ?? writeAs('utf8')
  const latin1Write = outer.latin1Write ?? writeAs('latin1')
  // Views of `inner` by message length, made once: a subarray per call would be an allocation per verify.
  const views: (Uint8Array | undefined)[] = []
  return (message) => {
    // One UTF-16 unit is at most 3 UTF-8 bytes; anything that might not fit takes the slow path.
    if (message.length * 3 > MESSAGE_CAPACITY) return slow(message)
    const length = SHA256_BLOCK_BYTES + utf8Write.call(inner, message, SHA256_BLOCK_BYTES)
    const view = (views[length] ??= inner.subarray(0, length))
    // The inner digest goes over as latin1 (one character per byte, lossless): half the characters of hex.
    latin1Write.call(outer, hash('sha256', view, 'latin1'), SHA256_BLOCK_BYTES)
    return hash('sha256', outer, 'hex')
  }
}

function writeAs(encoding: 'utf8' | 'latin1'): (this: NativeBuffer, text: string, offset: number) => number {
  return function (this: NativeBuffer, text: string, offset: number): number {
    return this.write(text, offset, encoding)
  }
}

function plainDigest(native: NativeCrypto | undefined): Digest {
  const hash = native?.hash?.bind(native)
  if (hash) return (message) => hash('sha256', message, 'hex')
  if (native) return (message) => native.createHash('sha256').update(message).digest('hex')
  return (message) => bytesToHex(sha256(utf8ToBytes(message)))
}

let sha256OfText: Digest | undefined

/** The lowercase hex SHA-256 of a text's UTF-8 bytes (node's one-shot hash where there is one). */
export function sha256Hex(text: string): string {
  sha256OfText ??= plainDigest(nativeCrypto())
  return sha256OfText(text)
}

/** Options of {@link SecretHasher}. */
export interface SecretHasherOptions {
  /** Use node's `crypto` when the platform has it (default), or always `@noble/hashes`. Same digests. */
  readonly native?: boolean
  /**
   * With a pepper: whether an unpeppered `kw1$sha256$-$` hash still verifies (as stale, to be
   * re-hashed). Default `false`: anyone who can write one row could otherwise plant a hash of a secret
   * of their choosing. Without a pepper, unpeppered hashes are the current scheme and always verify.
   */
  readonly acceptUnpeppered?: boolean
}

/** Where a stored hash came from: its pepper ID, or `null` for an unpeppered hash. */
export type HashOrigin = string | null

const PLAIN_TAG = `${SCHEME_VERSION}$sha256$-$`
const HMAC_TAG = `${SCHEME_VERSION}$hmac-sha256$`

/**
 * Hashes secrets for storage and compares them in constant time.
 *
 * Stored form: `kw1$hmac-sha256$<pepperId>$<hex>` with a pepper, `kw1$sha256$-$<hex>` without.
 * The hashed message binds the secret to its environment and key ID (domain separation), so a
 * stored hash cannot be replayed for another key. Pepper bytes live in private fields only, so no
 * `util.inspect`, `console.log` or `JSON.stringify` of an object holding the hasher shows them.
 */
export class SecretHasher {
  readonly #digests = new Map<string, Digest>()
  readonly #plain: Digest
  readonly #acceptPlain: boolean
  readonly #currentTag: string
  readonly #currentDigest: Digest
  readonly #currentId: HashOrigin
  readonly #dummyHash: string
  /** The current pepper's bytes, for {@link SecretHasher.derive}; `null` without a pepper. */
  readonly #currentKey: Uint8Array | null

  constructor(peppers: readonly Pepper[], options: SecretHasherOptions = {}) {
    const native = options.native === false ? undefined : nativeCrypto()
    // Copied: a caller that later reuses or zeroes its buffer must not change the hashes.
    const keys = peppers.map((pepper) => ({ id: pepper.id, key: typeof pepper.secret === 'string' ? utf8ToBytes(pepper.secret) : Uint8Array.from(pepper.secret) }))
    for (const { id, key } of keys) this.#digests.set(id, keyedDigest(key, native))
    this.#plain = plainDigest(native)
    const current = keys[0]
    this.#acceptPlain = current === undefined || options.acceptUnpeppered === true
    this.#currentTag = current ? `${HMAC_TAG}${current.id}$` : PLAIN_TAG
    this.#currentDigest = current ? this.#digests.get(current.id)! : this.#plain
    this.#currentId = current ? current.id : null
    this.#dummyHash = this.#currentTag + '0'.repeat(64)
    this.#currentKey = current ? current.key : null
  }

  /**
   * A string of `length` base62 characters determined by `label` and the current pepper, or `null`
   * without a pepper. The pepper is the only secret input, so only the server can reproduce it.
   */
  derive(label: string, length: number): string | null {
    return this.#currentKey === null ? null : deriveBase62(this.#currentKey, label, length)
  }

  /** Whether a pepper is configured (plain SHA-256 otherwise). */
  get peppered(): boolean {
    return this.#digests.size > 0
  }

  /** The pepper ID new hashes are made with, or `null` without a pepper. */
  get currentOrigin(): HashOrigin {
    return this.#currentId
  }

  /** The stored form of `secret` for the key `keyId` in `environment`, with the current pepper. */
  hash(environment: string, keyId: string, secret: string): string {
    return this.#currentTag + this.#currentDigest(message(environment, keyId, secret))
  }

  /**
   * Compares `secret` with a stored hash in constant time. A hash under an older configured pepper
   * matches as {@link HashMatch.Stale}; so does an unpeppered one, but only while a pepper is set and
   * `acceptUnpeppered` allows it. An unknown scheme or a retired pepper never matches.
   */
  compare(stored: string, environment: string, keyId: string, secret: string): HashMatch {
    if (stored.startsWith(this.#currentTag)) {
      // The digest alone is compared (the tags are equal): no concatenated string to build and flatten.
      const digest = this.#currentDigest(message(environment, keyId, secret))
      return constantTimeEqualAt(stored, this.#currentTag.length, digest) ? HashMatch.Current : HashMatch.None
    }
    const tag = stored.slice(0, stored.lastIndexOf('$') + 1)
    const digest = this.#digestFor(tag)
    if (digest === undefined) {
      // Unknown scheme, retired pepper or a refused downgrade: spend the same work, then fail.
      this.compareWithDummy(environment, keyId, secret)
      return HashMatch.None
    }
    const candidate = tag + digest(message(environment, keyId, secret))
    return constantTimeEqual(stored, candidate) ? HashMatch.Stale : HashMatch.None
  }

  /** Does the work of one comparison against a hash that never matches (for unknown key IDs). */
  compareWithDummy(environment: string, keyId: string, secret: string): false {
    constantTimeEqual(this.#dummyHash, this.hash(environment, keyId, secret))
    return false
  }

  /** The pepper ID a stored hash names, `null` for an unpeppered one (read from its tag; no secret involved). */
  originOf(stored: string): HashOrigin {
    if (stored.startsWith(HMAC_TAG)) return stored.slice(HMAC_TAG.length, stored.lastIndexOf('$'))
    return null
  }

  #digestFor(tag: string): Digest | undefined {
    if (tag === PLAIN_TAG) return this.#acceptPlain ? this.#plain : undefined
    if (!tag.startsWith(HMAC_TAG)) return undefined
    return this.#digests.get(tag.slice(HMAC_TAG.length, -1))
  }
}

function message(environment: string, keyId: string, secret: string): string {
  return `${DOMAIN}\0${environment}\0${keyId}\0${secret}`
}
