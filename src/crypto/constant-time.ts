/**
 * Constant-time string comparison for stored digests.
 */

/**
 * Compares two strings in time that depends only on their length, not on where they differ.
 * Lengths are not secret here: every digest of one scheme has the same length.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return difference === 0
}

/**
 * Whether `text` from `offset` to its end equals `expected`, in time that depends only on the lengths.
 * Compares a stored `tag$digest` with a digest without building `tag + digest`.
 */
export function constantTimeEqualAt(text: string, offset: number, expected: string): boolean {
  if (text.length - offset !== expected.length) return false
  let difference = 0
  for (let i = 0; i < expected.length; i++) difference |= text.charCodeAt(offset + i) ^ expected.charCodeAt(i)
  return difference === 0
}
