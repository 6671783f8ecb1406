/**
 * The management API's error answers: RFC 9457 problem bodies with a stable `code`, and the mapping
 * from keywarden's errors to them. Bodies hold no input and no key ID, so a 404 for a key that does
 * not exist and for one the principal may not see are the same bytes.
 */
import * as z from 'zod/mini'
import { problemAnswer } from '../problem-answer.js'
import { ConflictError, formatPath, KeyNotFoundError, KeywardenError, QuotaExceededError, StoreError, ValidationError } from '../../errors.js'

/**
 * The stable `code` of a management API problem body: what a settings page may branch on.
 *
 * @example
 * ```ts
 * import type { ManagementProblem } from 'keywarden'
 *
 * const response = await fetch('/api/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"CI"}' })
 * if (!response.ok) {
 *   const problem = (await response.json()) as ManagementProblem
 *   if (problem.code === 'quota_exceeded') console.info(`You can hold at most ${problem.limit} keys`)
 * }
 * ```
 */
export type ManagementProblemCode =
  | 'unauthorized'
  | 'forbidden'
  | 'grant_not_allowed'
  | 'cross_site_request'
  | 'not_found'
  | 'method_not_allowed'
  | 'quota_exceeded'
  | 'conflict'
  | 'idempotency_conflict'
  | 'key_revoked'
  | 'version_conflict'
  | 'invalid_request'
  | 'validation_failed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'service_unavailable'

/** Every code, for the OpenAPI document. */
export const MANAGEMENT_PROBLEM_CODES = [
  'unauthorized',
  'forbidden',
  'grant_not_allowed',
  'cross_site_request',
  'not_found',
  'method_not_allowed',
  'quota_exceeded',
  'conflict',
  'idempotency_conflict',
  'key_revoked',
  'version_conflict',
  'invalid_request',
  'validation_failed',
  'payload_too_large',
  'unsupported_media_type',
  'service_unavailable',
] as const satisfies readonly ManagementProblemCode[]

/**
 * A management API problem body (`Content-Type: application/problem+json`).
 *
 * @example
 * ```ts
 * import type { ManagementProblem } from 'keywarden'
 *
 * const problem: ManagementProblem = {
 *   type: 'about:blank', title: 'Unprocessable Content', status: 422, code: 'validation_failed',
 *   detail: 'The request body is not valid.', field: 'name', issues: [{ field: 'name', message: 'must not be blank' }],
 * }
 * ```
 */
export interface ManagementProblem {
  /** Always `about:blank`: the status and `code` say it all. */
  readonly type: 'about:blank'
  /** The HTTP status phrase. */
  readonly title: string
  /** The HTTP status, repeated. */
  readonly status: number
  /** A sentence for people. */
  readonly detail: string
  /** The stable code. */
  readonly code: ManagementProblemCode
  /** 400, 403 `grant_not_allowed` and 422: the first offending field (dotted path; a header's name for headers). */
  readonly field?: string
  /** 422: every problem found. */
  readonly issues?: readonly {
    /** The field, as a dotted path. */
    readonly field: string
    /** What is wrong with it. */
    readonly message: string
  }[]
  /** 409 `quota_exceeded`: how many keys the owner may hold. */
  readonly limit?: number
}

export const problemSchema = z.object({
  type: z.literal('about:blank'),
  title: z.string(),
  status: z.int(),
  detail: z.string(),
  code: z.enum(MANAGEMENT_PROBLEM_CODES),
  field: z.optional(z.string()),
  issues: z.optional(z.array(z.object({ field: z.string(), message: z.string() }))),
  limit: z.optional(z.int()),
})


/** A response the router sends: status, headers and the serialised body (`null` for none). */
export interface RouterResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string | null
}

/** A problem response; `extra` adds fields (`field`, `issues`, `limit`) and headers. */
export function problem(
  status: number,
  code: ManagementProblemCode,
  detail: string,
  extra: { field?: string; issues?: ManagementProblem['issues']; limit?: number; headers?: Record<string, string> } = {},
): RouterResponse {
  const { headers, ...fields } = extra
  return problemAnswer(status, code, detail, fields, headers)
}

/** The one 404: for a route that does not exist, a key that does not exist, and a key the principal may not see. */
export const NOT_FOUND = problem(404, 'not_found', 'Nothing was found here.')
export const UNAUTHORIZED = problem(401, 'unauthorized', 'Sign in to manage API keys.')
export const FORBIDDEN = problem(403, 'forbidden', 'You may not do this to this API key.')
export const VERSION_MISMATCH = problem(412, 'version_conflict', 'The API key was changed since you read it; reload it and try again.')


/** A validation failure of the request itself (body, query or header). */
export function invalid(status: 400 | 422, issues: { field: string; message: string }[]): RouterResponse {
  const detail = status === 400 ? 'The request is not valid.' : 'The request body is not valid.'
  return problem(status, status === 400 ? 'invalid_request' : 'validation_failed', detail, { field: issues[0]?.field ?? '', issues })
}

/**
 * The answer for invalid input: the KeyManager's own validation error, or the router's (built with
 * the same `toIssues`, so an unknown field is named only when it is one of keywarden's).
 */
export function invalidInput(status: 400 | 422, error: ValidationError): RouterResponse {
  return invalid(status, error.issues.map((issue) => ({ field: formatPath(issue.path), message: issue.message })))
}

/**
 * The answer for an error a KeyManager call threw, or `null` for errors that are not keywarden's
 * (the host's own callbacks, bugs): those go to the framework's error handling. A validation error is
 * `inputStatus`: 422 on routes with a body (it names a body field), 400 on the others (a query parameter).
 */
export function problemForError(error: unknown, inputStatus: 400 | 422): RouterResponse | null {
  if (!(error instanceof KeywardenError)) return null
  if (error instanceof ValidationError) {
    // A malformed key ID in the path can only name a key that does not exist.
    if (error.field === 'id') return NOT_FOUND
    return invalidInput(inputStatus, error)
  }
  if (error instanceof KeyNotFoundError) return NOT_FOUND
  if (error instanceof QuotaExceededError) {
    return problem(409, 'quota_exceeded', `The owner already holds the maximum number of API keys (${error.limit}).`, { limit: error.limit })
  }
  if (error instanceof ConflictError) {
    if (error.code === 'version_conflict') return VERSION_MISMATCH
    if (error.code === 'key_revoked') return problem(409, 'key_revoked', 'The API key is revoked; revocation cannot be undone.')
    if (error.code === 'idempotency_conflict') return problem(409, 'idempotency_conflict', 'The Idempotency-Key was already used for a different request.')
    return problem(409, 'conflict', 'The API key was changed concurrently; try again.')
  }
  if (error instanceof StoreError) return problem(503, 'service_unavailable', 'API keys cannot be managed right now. Try again later.', { headers: { 'Retry-After': '1' } })
  return null
}
