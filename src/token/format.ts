/**
 * The token format: building a token from its parts, and parsing (format and checksum) offline.
 */
import { BASE62_ALPHABET, encodeBase62 } from './base62.js'
import { CRC32_TABLE, crc32 } from './crc32.js'
import { keepStringMethodsFast } from './fast-strings.js'

/** Characters in a key ID: base62, about 95 bits, so IDs can be generated without coordination. */
export const KEY_ID_LENGTH = 16
/** Characters in a secret: base62, about 190 bits from the CSPRNG. */
export const SECRET_LENGTH = 32
/** Characters in the checksum: CRC-32 in base62, as in GitHub's token format. */
export const CHECKSUM_LENGTH = 6

/** Brand prefixes and environment names: lower-case letters and digits, so a token is one "word". */
export const LABEL_PATTERN = /^[a-z][a-z0-9]{0,15}$/

/** The parts of a token. `secret` is sensitive; never log or store it. */
export interface TokenParts {
  readonly prefix: string
  readonly environment: string
  readonly keyId: string
  readonly secret: string
}

/**
 * Joins the parts into the token string: `{prefix}_{environment}_{keyId}_{secret}{checksum}`.
 * Underscores and base62 keep the whole token selectable by a double-click and legal after `Bearer `.
 */
export function formatToken(parts: TokenParts): string {
  const body = `${parts.prefix}_${parts.environment}_${parts.keyId}_${parts.secret}`
  return body + encodeBase62(crc32(body), CHECKSUM_LENGTH)
}

/** Longest token any configuration can produce; anything longer is rejected before parsing. */
export function maxTokenLength(prefix: string, environments: readonly string[]): number {
  const longestEnvironment = Math.max(...environments.map((environment) => environment.length))
  return prefix.length + 1 + longestEnvironment + 1 + KEY_ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH
}

/** 0 for each base62 character code, 1 elsewhere: a table lookup instead of a regex on the hot path. */
const BASE62_INVALID = /* @__PURE__ */ (() => {
  const table = new Uint8Array(128).fill(1)
  for (let i = 0; i < BASE62_ALPHABET.length; i++) table[BASE62_ALPHABET.charCodeAt(i)] = 0
  return table
})()

/** Value of each base62 character code (valid only where BASE62_CODES says so). */
const BASE62_VALUES = /* @__PURE__ */ (() => {
  const table = new Uint8Array(128)
  for (let i = 0; i < BASE62_ALPHABET.length; i++) table[BASE62_ALPHABET.charCodeAt(i)] = i
  return table
})()

const UNDERSCORE = 0x5f
/** Key ID, separator, secret and checksum: everything after `{prefix}_{environment}_`. */
const TAIL_LENGTH = KEY_ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH

/**
 * Parses tokens of one configuration. Parsing is offline: the format and the checksum reject garbage
 * and typos before any store access. It runs on every request, so it scans character codes once and
 * allocates only the parts it returns.
 */
export class TokenParser {
  private readonly prefix: string
  private readonly environments: ReadonlySet<string>
  private readonly minLength: number
  private readonly maxLength: number

  constructor(prefix: string, environments: readonly string[]) {
    // Parsing is charCodeAt in a loop: keep String.prototype out of V8's slow mode (see fast-strings.ts).
    keepStringMethodsFast()
    this.prefix = prefix
    this.environments = new Set(environments)
    const lengths = environments.map((environment) => environment.length)
    this.minLength = prefix.length + 1 + Math.min(...lengths) + 1 + TAIL_LENGTH
    this.maxLength = maxTokenLength(prefix, environments)
  }

  /** Returns the token's parts, or `null` when it is not a well-formed token of this configuration. */
  parse(token: unknown): TokenParts | null {
    if (typeof token !== 'string' || token.length < this.minLength || token.length > this.maxLength) return null
    const prefix = this.prefix
    if (!token.startsWith(prefix) || token.charCodeAt(prefix.length) !== UNDERSCORE) return null
    // The environment runs from after the prefix's underscore to the fixed-length tail.
    const tailStart = token.length - TAIL_LENGTH
    if (token.charCodeAt(tailStart - 1) !== UNDERSCORE || token.charCodeAt(tailStart + KEY_ID_LENGTH) !== UNDERSCORE) return null
    const environment = token.slice(prefix.length + 1, tailStart - 1)
    if (!this.environments.has(environment)) return null
    const checksumStart = token.length - CHECKSUM_LENGTH
    const separator = tailStart + KEY_ID_LENGTH
    // One pass: the CRC of the body, and a base62 check of the key ID and secret characters.
    let crc = 0xffffffff
    let invalid = 0
    for (let i = 0; i < checksumStart; i++) {
      const code = token.charCodeAt(i)
      crc = CRC32_TABLE[(crc ^ code) & 0xff]! ^ (crc >>> 8)
      if (i >= tailStart && i !== separator) invalid |= code >= 128 ? 1 : BASE62_INVALID[code]!
    }
    let checksum = 0
    for (let i = checksumStart; i < token.length; i++) {
      const code = token.charCodeAt(i)
      invalid |= code >= 128 ? 1 : BASE62_INVALID[code]!
      checksum = checksum * 62 + BASE62_VALUES[code & 0x7f]!
    }
    // Six base62 digits always fit a double exactly, so comparing values is comparing strings.
    if (invalid !== 0 || ((crc ^ 0xffffffff) >>> 0) !== checksum) return null
    return {
      prefix,
      environment,
      keyId: token.slice(tailStart, tailStart + KEY_ID_LENGTH),
      secret: token.slice(tailStart + KEY_ID_LENGTH + 1, checksumStart),
    }
  }
}
