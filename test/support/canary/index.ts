/**
 * The run-wide leak canary, as tests see it. Every secret issued during `npm test` is collected, and at
 * the end of the run every log line, event payload, error (message, stack, causes), HTTP response,
 * store write and raw storage dump is scanned for any of them; so is everything outside storage for
 * every stored hash written, and everything for every pepper the tests define (see README.md).
 *
 * Most of it is automatic (setup.ts hooks KeyManager, the event emitter, the stores, console, stdout
 * and node's HTTP responses). Tests add what only they can see:
 *
 * @example
 * ```ts
 * recordHttpResponse(response.raw, 'GET /read')           // a response read off the wire
 * recordStorageDump(await handle.dump(), 'postgres table')  // before the table is dropped
 * exposeOnPurpose(token, 'this test logs a token to check the log scrubber')
 * ```
 */
import { CHECKSUM_LENGTH, SECRET_LENGTH } from '../../../src/token/format.js'
import { currentWhere, record } from './sink.js'

export { currentWhere }

/** Adds an HTTP response (status line, headers and body, as received) to the scanned corpus. */
export function recordHttpResponse(raw: string, detail = 'response'): void {
  record('http', currentWhere(), detail, raw)
}

/** Adds a raw copy of what a store holds to the scanned corpus. Take it before the table is dropped. */
export function recordStorageDump(text: string, detail = 'dump'): void {
  record('dump', currentWhere(), detail, text)
}

/**
 * Tells the canary that this token (or bare secret, or stored hash `kw1$…$<64 hex>`, or its bare
 * digest) is put somewhere observable on purpose, e.g. by a test of a log scrubber or of the canary
 * itself; it is then left out of the scan. Keep these rare: every one is counted in the end-of-run
 * summary, and one that names something never issued or written fails the run.
 */
export function exposeOnPurpose(value: string, reason: string): void {
  if (reason.trim().length === 0) throw new Error('exposeOnPurpose needs a reason')
  const digest = /(?:^|\$)([0-9a-fA-F]{64})$/.exec(value)?.[1]
  if (digest !== undefined) return record('allow', currentWhere(), reason, digest.toLowerCase())
  // The secret is the 32 characters before the 6-character checksum of a token.
  const secret = value.length > SECRET_LENGTH ? value.slice(-(SECRET_LENGTH + CHECKSUM_LENGTH), -CHECKSUM_LENGTH) : value
  record('allow', currentWhere(), reason, secret)
}
