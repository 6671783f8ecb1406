/**
 * Leak reports: confirm that a token found in public is one of ours, with its real secret, without
 * counting a use; then take the key out of service through the ordinary revoke or disable path (so
 * its audit entry, its events and the cache invalidation happen as for any other change).
 */
import * as z from 'zod/mini'
import type { Actor, ChangeContext } from '../audit/audit-store.js'
import { HashMatch, type SecretHasher } from '../crypto/hash.js'
import { KeyNotFoundError, KeyRevokedError } from '../errors.js'
import type { KeyEventEmitter } from '../events.js'
import type { KeyStore, StoredKey } from '../store.js'
import { callStore } from '../store-failure.js'
import type { TokenParser, TokenParts } from '../token/format.js'
import type { ApiKey } from '../types.js'
import { parseInput } from '../validation.js'
import type { KeyChangeResult } from './key-changes.js'
import { livePreviousHash } from './rotation.js'

/** Longest `source` a report may give, in UTF-16 code units. */
export const MAX_LEAK_SOURCE_LENGTH = 256
/** Longest `url` a report may give, in UTF-16 code units. */
export const MAX_LEAK_URL_LENGTH = 2048
/** Longest `reporter` a report may give, in UTF-16 code units. */
export const MAX_LEAK_REPORTER_LENGTH = 100
/** The limit every change reason has (see the change context). */
const MAX_REASON_LENGTH = 1000

/** The actor named on the audit entry of every change a leak report makes. */
export const SECRET_SCANNING_ACTOR: Actor = Object.freeze({ type: 'system', id: 'secret-scanning' })

/** One-line labels: no control character at all (not even a tab or a line break), no unpaired surrogate. */
export const PLAIN_TEXT = /^[^\p{Cc}\p{Cs}]*$/u
const PLAIN_TEXT_MESSAGE = 'must not contain control characters or unpaired surrogate characters'

/**
 * What a leak report says about where the token was found, and what to do with a genuine one.
 * Invalid options are a {@link ValidationError} naming the field (nothing is read or changed).
 *
 * @example
 * ```ts
 * import type { ReportLeakOptions } from 'keywarden'
 *
 * const options: ReportLeakOptions = {
 *   source: 'commit',
 *   url: 'https://github.com/octo/app/blob/4e1f/config.yml',
 *   action: 'disable', // reversible; the default is 'revoke'
 * }
 * const report = await keys.reportLeak(token, options)
 * ```
 */
export interface ReportLeakOptions {
  /**
   * Where the token was found, e.g. GitHub's `content`, `commit`, `pull_request`, `issue`, `gist`;
   * at most 256 characters, no control characters. `null` or omitted: not known.
   *
   * @example
   * ```ts
   * await keys.reportLeak(token, { source: 'pull_request' })
   * ```
   */
  readonly source?: string | null
  /**
   * The address of the place the token was found; at most 2,048 characters, no control characters.
   * `null` or omitted: not known. A copy of the token in it is masked before it is stored or emitted.
   *
   * @example
   * ```ts
   * await keys.reportLeak(token, { url: 'https://gist.github.com/octo/5d52a7' })
   * ```
   */
  readonly url?: string | null
  /**
   * `'revoke'` (the default): end the key for good. `'disable'`: stop it reversibly while you ask the owner.
   *
   * @example
   * ```ts
   * await keys.reportLeak(token, { action: 'disable' })
   * ```
   */
  readonly action?: 'revoke' | 'disable'
  /**
   * Who found the token, for the reason written on the audit entry: `Leaked: found by <reporter>
   * (source: ...) at <url>`. 1 to 100 characters, no control characters; default `'secret scanning'`.
   * The GitHub handler passes `'GitHub secret scanning'`.
   *
   * @example
   * ```ts
   * await keys.reportLeak(token, { reporter: 'a customer (ticket 812)' })
   * ```
   */
  readonly reporter?: string
}

/**
 * The answer to {@link KeyManager.reportLeak}: whether the token is genuine, and what was done.
 * Its labels are those of GitHub's secret scanning partner program.
 *
 * @example
 * ```ts
 * import type { LeakReport } from 'keywarden'
 *
 * const report: LeakReport = await keys.reportLeak(token, { source: 'issue' })
 * if (report.label === 'true_positive' && report.action === 'none') console.info(`${report.keyId} was already out of service`)
 * ```
 */
export interface LeakReport {
  /**
   * `true_positive`: the token is a key's current secret, or its previous one still in its rotation
   * grace period. `false_positive`: anything else (not a token of this configuration, an unknown key,
   * a wrong secret, an old secret past its grace period).
   */
  readonly label: 'true_positive' | 'false_positive'
  /**
   * The key ID the token names when it is a well-formed token of this configuration (also for a
   * false positive, e.g. a wrong secret, which may be someone building tokens from known IDs);
   * `null` when it is not one.
   */
  readonly keyId: string | null
  /**
   * What this report did: `revoked`, `disabled`, or `none` (a false positive, or a key that already
   * was revoked, or disabled when the action is `disable`).
   */
  readonly action: 'revoked' | 'disabled' | 'none'
}

const text = (max: number) => z.string().check(z.maxLength(max), z.regex(PLAIN_TEXT, PLAIN_TEXT_MESSAGE))

const optionsSchema = z.strictObject({
  source: z.nullish(text(MAX_LEAK_SOURCE_LENGTH)),
  url: z.nullish(text(MAX_LEAK_URL_LENGTH)),
  action: z._default(z.enum(['revoke', 'disable']), 'revoke'),
  reporter: z._default(z.string().check(z.minLength(1), z.maxLength(MAX_LEAK_REPORTER_LENGTH), z.regex(PLAIN_TEXT, PLAIN_TEXT_MESSAGE)), 'secret scanning'),
})

/** What leak reports need from their KeyManager. */
export interface LeakReportsParts {
  readonly parser: TokenParser
  readonly store: KeyStore
  readonly hasher: SecretHasher
  readonly events: KeyEventEmitter
  readonly clock: () => number
  readonly project: (record: StoredKey) => ApiKey
  /** The KeyManager's own revoke. */
  readonly revoke: (id: string, context: ChangeContext) => Promise<KeyChangeResult>
  /** The KeyManager's own disable. */
  readonly disable: (id: string, context: ChangeContext) => Promise<KeyChangeResult>
}

type LeakAction = LeakReport['action']

const NOT_A_TOKEN: LeakReport = Object.freeze({ label: 'false_positive', keyId: null, action: 'none' })

export class LeakReports {
  constructor(private readonly parts: LeakReportsParts) {}

  /**
   * Handles one report. A token that is not a string is a false positive like any other garbage:
   * reports come from scanners, and a report never throws for what it was given to check.
   */
  async report(token: unknown, options: unknown): Promise<LeakReport> {
    const { source, url, action, reporter } = parseInput(optionsSchema, options)
    const parts = this.parts.parser.parse(token)
    if (parts === null) return NOT_A_TOKEN
    // Straight from the store, not the verify cache: a report is rare, and must see the key as it is.
    const record = await callStore('get', () => this.parts.store.get(parts.keyId))
    if (!this.#genuine(record, parts)) return Object.freeze({ label: 'false_positive', keyId: parts.keyId, action: 'none' })
    const where = { source: redact(source ?? null, token as string, parts.secret), url: redact(url ?? null, token as string, parts.secret) }
    const { key, done } = await this.#takeOutOfService(record, action, reasonFor(reporter, where))
    this.parts.events.emit({ type: 'leaked', at: new Date(this.parts.clock()), key, action: done, ...where })
    return Object.freeze({ label: 'true_positive', keyId: record.id, action: done })
  }

  /** The checks verify starts with (an unknown ID costs a dummy comparison), and nothing after them: no use is counted. */
  #genuine(record: StoredKey | null, { environment, keyId, secret }: TokenParts): record is StoredKey {
    const { hasher, clock } = this.parts
    if (record === null) return hasher.compareWithDummy(environment, keyId, secret)
    if (hasher.compare(record.hash, environment, keyId, secret) !== HashMatch.None) return true
    const previousHash = livePreviousHash(record, clock())
    return previousHash !== null && hasher.compare(previousHash, environment, keyId, secret) !== HashMatch.None
  }

  async #takeOutOfService(record: StoredKey, action: 'revoke' | 'disable', reason: string): Promise<{ key: ApiKey; done: LeakAction }> {
    if (record.revokedAt !== null || (action === 'disable' && !record.enabled)) return { key: this.parts.project(record), done: 'none' }
    const context: ChangeContext = { actor: SECRET_SCANNING_ACTOR, reason }
    try {
      const { key, changed } = action === 'revoke' ? await this.parts.revoke(record.id, context) : await this.parts.disable(record.id, context)
      // Not changed: a concurrent call (the same token reported twice in one batch, say) got there first.
      return { key, done: changed ? (action === 'revoke' ? 'revoked' : 'disabled') : 'none' }
    } catch (error) {
      // Revoked (for a disable) or deleted since it was read: the token was genuine, and nothing is left to do.
      if (!(error instanceof KeyRevokedError) && !(error instanceof KeyNotFoundError)) throw error
      const current = await callStore('get', () => this.parts.store.get(record.id))
      return { key: this.parts.project(current ?? record), done: 'none' }
    }
  }
}

/** `value` with every copy of the token or its secret masked: a report may quote it (a URL with `?key=`). */
function redact(value: string | null, token: string, secret: string): string | null {
  if (value === null) return null
  return value.split(token).join('[redacted]').split(secret).join('[redacted]')
}

/** `Leaked: found by <reporter> (source: <source>) at <url>`, cut to the length reasons may have. */
function reasonFor(reporter: string, { source, url }: { source: string | null; url: string | null }): string {
  let reason = `Leaked: found by ${reporter}`
  if (source) reason += ` (source: ${source})`
  if (url) reason += ` at ${url}`
  return truncate(reason, MAX_REASON_LENGTH)
}

/** At most `max` code units, ending in `…` when cut; never splits a surrogate pair (reasons refuse a lone one). */
export function truncate(value: string, max: number): string {
  if (value.length <= max) return value
  let end = max - 1
  const last = value.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${value.slice(0, end)}…`
}
