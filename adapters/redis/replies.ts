/**
 * Replies arrive in whatever shape the client chose (strings or Buffers, numbers or bigints); these
 * read them the same way whichever client is plugged in. A reply of another shape is a store failure.
 */

function unexpected(expected: string): Error {
  return new Error(`Unexpected Redis reply: expected ${expected}`)
}

/** A bulk string, or `null` for nil. */
export function readText(reply: unknown): string | null {
  if (reply === null || reply === undefined) return null
  if (typeof reply === 'string') return reply
  if (reply instanceof Uint8Array) return Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString('utf8')
  throw unexpected('a string')
}

export function readInteger(reply: unknown): number {
  const value = typeof reply === 'number' || typeof reply === 'bigint' ? Number(reply) : Number(readText(reply) ?? NaN)
  if (!Number.isInteger(value)) throw unexpected('an integer')
  return value
}

export function readArray(reply: unknown): unknown[] {
  if (!Array.isArray(reply)) throw unexpected('an array')
  return reply
}

/** An array of bulk strings, nil entries kept as `null`. */
export function readTexts(reply: unknown): (string | null)[] {
  return readArray(reply).map(readText)
}

/** One of `outcomes`, as answered by a script. */
export function readOutcome<T extends string>(reply: unknown, outcomes: readonly T[]): T {
  const text = readText(reply)
  if (text === null || !(outcomes as readonly string[]).includes(text)) throw unexpected(`one of ${outcomes.join(', ')}`)
  return text as T
}

/** A finite number a script sent as text (`%.17g`, so every double arrives with its exact bits). */
export function readNumber(reply: unknown): number {
  const text = readText(reply)
  const value = text === null || text.trim() === '' ? NaN : Number(text)
  if (!Number.isFinite(value)) throw unexpected('a finite number')
  return value
}
