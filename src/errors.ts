/**
 * keywarden's errors: one base class with a stable `code`, and a few subclasses.
 */

/**
 * The stable codes carried by {@link KeywardenError.code}. `idempotency_conflict` comes with a
 * {@link ConflictError}, `key_revoked` with a {@link KeyRevokedError}.
 *
 * @example
 * ```ts
 * import type { KeywardenErrorCode } from 'keywarden'
 *
 * const status: Record<KeywardenErrorCode, number> = {
 *   config_invalid: 500, validation_failed: 400, key_not_found: 404, quota_exceeded: 409,
 *   conflict: 409, idempotency_conflict: 409, version_conflict: 409, key_revoked: 409, store_failed: 503,
 * }
 * ```
 */
export type KeywardenErrorCode =
  | 'config_invalid'
  | 'validation_failed'
  | 'key_not_found'
  | 'quota_exceeded'
  | 'conflict'
  | 'idempotency_conflict'
  | 'version_conflict'
  | 'key_revoked'
  | 'store_failed'

/**
 * Base class of every error thrown by keywarden, with a stable, machine-readable `code`: check `code`
 * rather than the message. Messages never contain secrets, hashes or caller input; the offending field
 * is named instead.
 *
 * Expected verification outcomes (unknown key, wrong secret, expired, ...) are not errors: `verify`
 * returns them as values. Errors are thrown for misconfiguration, invalid input and store failures.
 *
 * @example
 * ```ts
 * import { KeywardenError, QuotaExceededError } from 'keywarden'
 *
 * try {
 *   await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live' })
 * } catch (error) {
 *   if (error instanceof QuotaExceededError) console.info(`upgrade to hold more than ${error.limit} keys`)
 *   else if (error instanceof KeywardenError) console.error(error.code)
 *   else throw error
 * }
 * ```
 */
export class KeywardenError extends Error {
  /** Stable identifier of the failure, safe to branch on and to log. */
  readonly code: KeywardenErrorCode

  /** For subclasses; `options.cause` keeps the underlying error. */
  constructor(code: KeywardenErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/**
 * One problem found while validating options or input. `path` names the field, e.g. `['expiry', 'max']`.
 *
 * @example
 * ```ts
 * import { ValidationError, type ValidationIssue } from 'keywarden'
 *
 * app.post('/api-keys', async (req, res) => {
 *   try {
 *     res.status(201).json(await keys.create({ ...req.body, ownerId: currentUser.id }))
 *   } catch (error) {
 *     if (!(error instanceof ValidationError)) throw error
 *     res.status(400).json({ errors: error.issues.map((issue: ValidationIssue) => ({ field: issue.path.join('.'), message: issue.message })) })
 *   }
 * })
 * ```
 */
export interface ValidationIssue {
  /** Path of the offending field, from the top of the object that was validated. */
  readonly path: readonly (string | number)[]
  /** What is wrong, without repeating the value. */
  readonly message: string
}

function describeIssues(subject: string, issues: readonly ValidationIssue[]): string {
  const parts = issues.slice(0, 5).map((issue) => `${formatPath(issue.path) || subject}: ${issue.message}`)
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : ''
  return parts.join('; ') + more
}

/** Renders a field path as `a.b[0].c`. */
export function formatPath(path: readonly (string | number)[]): string {
  return path.reduce<string>(
    (text, part) => (typeof part === 'number' ? `${text}[${part}]` : text ? `${text}.${part}` : part),
    '',
  )
}

/**
 * The KeyManager (or a store) was configured wrongly. Thrown at construction, never per request.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 *
 * new KeyManager({ store, expiry: { default: '400d', max: '365d' } }) // throws ConfigError naming `expiry.default`
 * ```
 */
export class ConfigError extends KeywardenError {
  /** Every problem found, each naming its option path. */
  readonly issues: readonly ValidationIssue[]

  /** Builds the error from every problem found; the message names up to five of them. */
  constructor(issues: readonly ValidationIssue[], options?: { cause?: unknown }) {
    super('config_invalid', `Invalid keywarden options: ${describeIssues('options', issues)}`, options)
    this.issues = issues
  }
}

/**
 * Input to a KeyManager method was invalid. Nothing was changed.
 * `field` names the first offending field (e.g. `expiresIn`), `issues` lists them all.
 *
 * @example
 * ```ts
 * import { ValidationError } from 'keywarden'
 *
 * await keys.create({ name: '' }).catch((e) => e instanceof ValidationError && e.field) // 'name'
 * ```
 */
export class ValidationError extends KeywardenError {
  /** The first offending field, as a dotted path (`metadata.plan`), or `''` for the input as a whole. */
  readonly field: string
  /** Every problem found. */
  readonly issues: readonly ValidationIssue[]

  /** Builds the error from every problem found; the first one names `field`. */
  constructor(issues: readonly ValidationIssue[], options?: { cause?: unknown }) {
    super('validation_failed', `Invalid input: ${describeIssues('input', issues)}`, options)
    this.issues = issues
    this.field = formatPath(issues[0]?.path ?? [])
  }
}

/**
 * No key exists with the given ID (it was never created, or it was deleted).
 *
 * @example
 * ```ts
 * import { KeyNotFoundError } from 'keywarden'
 *
 * await keys.revoke('missing').catch((e) => e instanceof KeyNotFoundError) // true
 * ```
 */
export class KeyNotFoundError extends KeywardenError {
  /** The key ID that was looked up. Key IDs are public identifiers, not secrets. */
  readonly keyId: string

  /** Builds the error for the key ID that was looked up. */
  constructor(keyId: string) {
    super('key_not_found', 'No API key exists with the given ID')
    this.keyId = keyId
  }
}

/**
 * Creating the key would exceed the owner's quota (`maxKeysPerOwner`). Nothing was created.
 *
 * @example
 * ```ts
 * await keys.create({ name: 'third', ownerId: 'u1', environment: 'live' }) // throws QuotaExceededError when the limit is 2
 * ```
 */
export class QuotaExceededError extends KeywardenError {
  /** The owner whose quota is full. */
  readonly ownerId: string
  /** The limit that applied to this owner. */
  readonly limit: number
  /** The tenant the owner was counted in (quotas count per owner within its tenant), or `null`. */
  readonly tenantId: string | null

  /** Builds the error for the owner and the limit that applied (the limit goes into the message). */
  constructor(ownerId: string, limit: number, tenantId: string | null = null) {
    super('quota_exceeded', `The owner already holds the maximum number of API keys (${limit})`)
    this.ownerId = ownerId
    this.limit = limit
    this.tenantId = tenantId
  }
}

/**
 * The operation conflicts with the key's current state or with a concurrent change.
 * A conflict caused by concurrency is retried internally first; this surfaces only when retries ran out.
 *
 * @example
 * ```ts
 * import { ConflictError } from 'keywarden'
 *
 * try {
 *   await keys.update(keyId, { name: 'CI (main)' })
 * } catch (error) {
 *   if (!(error instanceof ConflictError)) throw error
 *   // too many concurrent changes: try again later
 * }
 * ```
 */
export class ConflictError extends KeywardenError {
  /** The key ID involved. */
  readonly keyId: string
  /** For `version_conflict`: the version the caller expected. */
  readonly expectedVersion?: number
  /** For `version_conflict`: the key's version when the call was made. */
  readonly actualVersion?: number

  /** `code` is `conflict` by default; subclasses and idempotent retries pass their own. */
  constructor(keyId: string, message = 'The API key was changed concurrently; retry the operation', code: KeywardenErrorCode = 'conflict') {
    super(code, message)
    this.keyId = keyId
  }
}

/**
 * The key is revoked. Revocation is irreversible: a revoked key can be read, listed and deleted, nothing else.
 *
 * @example
 * ```ts
 * await keys.revoke(keyId)
 * await keys.enable(keyId) // throws KeyRevokedError
 * ```
 */
export class KeyRevokedError extends ConflictError {
  /** Builds the error for the revoked key's ID. */
  constructor(keyId: string) {
    super(keyId, 'The API key is revoked; revocation cannot be undone', 'key_revoked')
  }
}

/**
 * The store failed (unreachable, timed out, rejected a query). The original error is kept as `cause`;
 * the message names only the operation. Middlewares answer 503 for this error, never 401.
 *
 * @example
 * ```ts
 * import { StoreError } from 'keywarden'
 *
 * app.get('/reports', async (req, res) => {
 *   try {
 *     const result = await keys.verify(req.get('x-api-key') ?? '')
 *     res.status(result.valid ? 200 : 401).end()
 *   } catch (e) {
 *     if (!(e instanceof StoreError)) throw e
 *     res.status(503).set('retry-after', '1').end() // the store is down: not the client's fault
 *   }
 * })
 * ```
 */
export class StoreError extends KeywardenError {
  /** The store operation that failed, e.g. `get` or `insert`. */
  readonly operation: string

  /** `options.cause` keeps the store's own error for your logs; the message names only `operation`. */
  constructor(operation: string, options?: { cause?: unknown }) {
    super('store_failed', `The key store failed during '${operation}'`, options)
    this.operation = operation
  }
}
