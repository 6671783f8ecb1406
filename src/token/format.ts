import { encodeBase62 } from './base62.js'
import { crc32 } from './crc32.js'

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

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * The token pattern for one configuration, without anchors, for secret scanners and log filters.
 * Checksums are not checked by a regex; pair it with {@link TokenParser.parse} to rule out false positives.
 */
export function tokenPatternSource(prefix: string, environments: readonly string[]): string {
  const alternatives = environments.map(escapeRegExp).join('|')
  return `${escapeRegExp(prefix)}_(?:${alternatives})_[0-9A-Za-z]{${KEY_ID_LENGTH}}_[0-9A-Za-z]{${SECRET_LENGTH + CHECKSUM_LENGTH}}`
}

/**
 * Parses tokens of one configuration. Parsing is offline: the format and the checksum reject garbage
 * and typos before any store access.
 */
export class TokenParser {
  private readonly pattern: RegExp
  private readonly maxLength: number

  constructor(prefix: string, environments: readonly string[]) {
    // Capture groups: environment, key ID, secret. The checksum is the last CHECKSUM_LENGTH characters.
    this.pattern = new RegExp(
      `^${escapeRegExp(prefix)}_(${environments.map(escapeRegExp).join('|')})_([0-9A-Za-z]{${KEY_ID_LENGTH}})_([0-9A-Za-z]{${SECRET_LENGTH}})[0-9A-Za-z]{${CHECKSUM_LENGTH}}$`,
    )
    this.maxLength = maxTokenLength(prefix, environments)
    this.prefix = prefix
  }

  private readonly prefix: string

  /** Returns the token's parts, or `null` when it is not a well-formed token of this configuration. */
  parse(token: unknown): TokenParts | null {
    if (typeof token !== 'string' || token.length > this.maxLength) return null
    const match = this.pattern.exec(token)
    if (match === null) return null
    const bodyLength = token.length - CHECKSUM_LENGTH
    const expected = encodeBase62(crc32(token.slice(0, bodyLength)), CHECKSUM_LENGTH)
    if (token.slice(bodyLength) !== expected) return null
    return { prefix: this.prefix, environment: match[1]!, keyId: match[2]!, secret: match[3]! }
  }
}
