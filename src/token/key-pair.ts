/**
 * A token as a key ID plus a secret, the way user-name-and-password forms and HTTP Basic carry it.
 * Splitting and joining are offline; the checksum is recomputed on join.
 */
import { ValidationError } from '../errors.js'
import { formatToken, KEY_ID_LENGTH, SECRET_LENGTH, type TokenParser } from './format.js'

/**
 * A key presented as its ID and secret instead of a token: what `keys.splitToken` returns and what
 * `keys.verify` and `keys.joinToken` accept.
 *
 * @example
 * ```ts
 * import type { KeyCredential } from 'keywarden'
 *
 * const pair: KeyCredential = keys.splitToken(token)!
 * const result = await keys.verify({ keyId: pair.keyId, secret: pair.secret })
 * ```
 */
export interface KeyCredential {
  /** The public key ID: 16 base62 characters. */
  readonly keyId: string
  /** The secret: 32 base62 characters (the token's part after the key ID, without the checksum). */
  readonly secret: string
}

/**
 * A token's parts as {@link KeyCredential} plus the environment the token names, so that
 * `keys.joinToken(keys.splitToken(token))` gives the token back.
 *
 * @example
 * ```ts
 * import type { SplitToken } from 'keywarden'
 *
 * const parts: SplitToken | null = keys.splitToken(token)
 * if (parts) console.info(`key:${parts.keyId}::${parts.secret}`)
 * ```
 */
export interface SplitToken extends KeyCredential {
  /** The environment the token names. */
  readonly environment: string
}

const BASE62 = /^[0-9A-Za-z]+$/

/** Whether `value` has the shape of a key ID and a secret (no store access, no checksum). */
export function isKeyCredential(value: unknown): value is KeyCredential {
  if (typeof value !== 'object' || value === null) return false
  const { keyId, secret } = value as { keyId?: unknown; secret?: unknown }
  return (
    typeof keyId === 'string' &&
    typeof secret === 'string' &&
    keyId.length === KEY_ID_LENGTH &&
    secret.length === SECRET_LENGTH &&
    BASE62.test(keyId) &&
    BASE62.test(secret)
  )
}

/** The key ID, secret and environment of a well-formed token; `null` for anything else. */
export function splitToken(parser: TokenParser, token: unknown): SplitToken | null {
  const parts = parser.parse(token)
  return parts === null ? null : { keyId: parts.keyId, secret: parts.secret, environment: parts.environment }
}

/**
 * The token for a key ID and secret, in `environment` (required when more than one is configured).
 * Throws a {@link ValidationError} naming the field for a malformed part; never echoes the secret.
 */
export function joinToken(prefix: string, environments: readonly string[], pair: unknown): string {
  const given = (typeof pair === 'object' && pair !== null ? pair : {}) as { keyId?: unknown; secret?: unknown; environment?: unknown }
  const issues = []
  if (typeof given.keyId !== 'string' || given.keyId.length !== KEY_ID_LENGTH || !BASE62.test(given.keyId)) {
    issues.push({ path: ['keyId'], message: `must be ${KEY_ID_LENGTH} base62 characters` })
  }
  if (typeof given.secret !== 'string' || given.secret.length !== SECRET_LENGTH || !BASE62.test(given.secret)) {
    issues.push({ path: ['secret'], message: `must be ${SECRET_LENGTH} base62 characters` })
  }
  let environment = given.environment
  if (environment === undefined && environments.length === 1) environment = environments[0]
  if (typeof environment !== 'string' || !environments.includes(environment)) {
    issues.push({
      path: ['environment'],
      message: given.environment === undefined ? 'is required when more than one environment is configured' : 'is not a configured environment',
    })
  }
  if (issues.length > 0) throw new ValidationError(issues)
  return formatToken({ prefix, environment: environment as string, keyId: given.keyId as string, secret: given.secret as string })
}
