/**
 * The base62 alphabet and fixed-width encoding used in tokens.
 */

/** Digits, then upper case, then lower case: the base62 alphabet used by keys, secrets and checksums. */
export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

/** Encodes a non-negative integer in base62, left-padded with `0` to `width` characters. */
export function encodeBase62(value: number, width: number): string {
  let text = ''
  let rest = value
  do {
    text = BASE62_ALPHABET[rest % 62]! + text
    rest = Math.floor(rest / 62)
  } while (rest > 0)
  return text.padStart(width, '0')
}
