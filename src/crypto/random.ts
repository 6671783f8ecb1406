/**
 * Fresh key IDs and secrets from the platform CSPRNG.
 */

import { customAlphabet } from 'nanoid'
import { BASE62_ALPHABET } from '../token/base62.js'
import { KEY_ID_LENGTH, SECRET_LENGTH } from '../token/format.js'

// nanoid draws from the platform CSPRNG and rejects out-of-range bytes, so every character is unbiased.
const keyIdGenerator = customAlphabet(BASE62_ALPHABET, KEY_ID_LENGTH)
const secretGenerator = customAlphabet(BASE62_ALPHABET, SECRET_LENGTH)

/** A fresh public key ID: 16 base62 characters. */
export function generateKeyId(): string {
  return keyIdGenerator()
}

/** A fresh secret: 32 base62 characters, about 190 bits of entropy. */
export function generateSecret(): string {
  return secretGenerator()
}
