import { ValidationError } from './errors.js'
import type { ListPosition } from './store.js'

const CURSOR_PATTERN = /^k1\.([0-9a-z]{1,12})\.([\x21-\x7e]{1,256})$/

/** Encodes a keyset position as an opaque cursor string. */
export function encodeCursor(position: ListPosition): string {
  return `k1.${position.createdAt.toString(36)}.${position.id}`
}

/** Decodes a cursor from {@link encodeCursor}; throws a {@link ValidationError} naming `cursor` otherwise. */
export function decodeCursor(cursor: string): ListPosition {
  const match = CURSOR_PATTERN.exec(cursor)
  const createdAt = match ? parseInt(match[1]!, 36) : NaN
  if (!match || !Number.isSafeInteger(createdAt)) {
    throw new ValidationError([{ path: ['cursor'], message: 'is not a cursor returned by list' }])
  }
  return { createdAt, id: match[2]! }
}
