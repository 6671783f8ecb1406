/**
 * The check every management call runs on the key ID it is given. A token or a bare secret passed
 * where an ID belongs is refused without being repeated anywhere (errors keep the ID they were given).
 */
import { ValidationError } from '../errors.js'
import { STORABLE_TEXT } from '../validation.js'

const MAX_ID_LENGTH = 256
/**
 * 32 base62 characters in a row: the length of a secret. Every token holds such a run (its secret
 * and checksum), key IDs (16) never do.
 */
const SECRET_SHAPED = /[0-9A-Za-z]{32}/

/** @throws {@link ValidationError} naming `id` when it is not a plausible key ID; never echoes it. */
export function checkKeyId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH || !STORABLE_TEXT.test(id)) {
    throw new ValidationError([
      { path: ['id'], message: `must be a non-empty string of at most ${MAX_ID_LENGTH} characters, without NUL or unpaired surrogates` },
    ])
  }
  if (SECRET_SHAPED.test(id)) {
    throw new ValidationError([
      { path: ['id'], message: 'looks like a token or a secret, not a key ID: pass key.id (keys.parseToken(token)?.keyId for a token)' },
    ])
  }
}
