/**
 * The rejection responses, built once per middleware from its options. Every request that fails the
 * same way gets the very same status, headers and body bytes, whatever the underlying reason. The one
 * exception is a 429: it speaks about a key the caller proved it holds, so it says which limit and when.
 */
import type { LimitState } from '../limits/limit-state.js'
import { problemAnswer, statusTitle } from './problem-answer.js'
import { rateLimitHeaders, retryAfterSeconds, type LimitRefusal } from './rate-limit-headers.js'

/**
 * The stable `code` in a rejection's problem body: what clients may branch on. Several
 * {@link RejectReason}s share one code, so the body does not tell which keys exist.
 *
 * @example
 * ```ts
 * import type { ProblemCode, ProblemDetails } from 'keywarden'
 *
 * // Client side:
 * const response = await fetch('https://api.example.com/reports', { headers: { authorization: `Bearer ${token}` } })
 * if (!response.ok) {
 *   const problem = (await response.json()) as ProblemDetails
 *   const code: ProblemCode = problem.code
 *   if (code === 'insufficient_scope') console.info('ask an admin for the data:read scope')
 * }
 * ```
 */
export type ProblemCode =
  | 'missing_credentials'
  | 'invalid_request'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'wrong_key_type'
  | 'check_failed'
  | 'rate_limited'
  | 'usage_exceeded'
  | 'service_unavailable'

/**
 * The problem `type` of 429 bodies: the IANA-registered "quota exceeded" problem type of
 * draft-ietf-httpapi-ratelimit-headers.
 *
 * @example
 * ```ts
 * import { QUOTA_EXCEEDED_TYPE, type ProblemDetails } from 'keywarden'
 *
 * const response = await fetch('https://api.example.com/reports', { headers: { authorization: `Bearer ${token}` } })
 * const problem = (await response.json()) as ProblemDetails
 * if (problem.type === QUOTA_EXCEEDED_TYPE) console.info('slow down:', problem['violated-policies'])
 * ```
 */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded'

/**
 * An RFC 9457 problem body as keywarden sends it (`Content-Type: application/problem+json`).
 *
 * @example
 * ```ts
 * import { createRequestVerifier, type ProblemDetails } from 'keywarden'
 *
 * const decision = await createRequestVerifier(keys)({ authorization: 'Bearer not-a-key' })
 * if (!decision.ok) {
 *   const problem: ProblemDetails = JSON.parse(decision.body)
 *   // { type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'The API key is not valid.', code: 'invalid_token' }
 *   // a 429: { type: 'https://iana.org/assignments/http-problem-types#quota-exceeded', title: 'Too Many Requests',
 *   //          status: 429, detail: '...', code: 'rate_limited', 'violated-policies': ['burst'] }
 * }
 * ```
 */
export interface ProblemDetails {
  /** {@link QUOTA_EXCEEDED_TYPE} for 429s; otherwise `about:blank`: the status says it all, `code` precisely. */
  readonly type: 'about:blank' | typeof QUOTA_EXCEEDED_TYPE
  /** The HTTP status phrase. */
  readonly title: string
  /** The HTTP status, repeated in the body. */
  readonly status: RejectionStatus
  /** A human-readable explanation (configurable with `messages`). */
  readonly detail: string
  /** The stable, machine-readable code. */
  readonly code: ProblemCode
  /** 429 only: the names of the limits that refused the request; `['credits']` when the credits are spent. */
  readonly 'violated-policies'?: readonly string[]
}

/**
 * The statuses a rejection can have.
 *
 * @example
 * ```ts
 * import { createRequestVerifier, type RejectionStatus } from 'keywarden'
 *
 * const decision = await createRequestVerifier(keys)({ authorization: `Bearer ${token}` })
 * if (!decision.ok) {
 *   const status: RejectionStatus = decision.status
 *   if (status === 429) console.info('throttled; Retry-After:', decision.headers['Retry-After'])
 * }
 * ```
 */
export type RejectionStatus = 400 | 401 | 403 | 429 | 503

/**
 * A ready-to-send rejection: write the status, the headers and the body as they are.
 *
 * @example
 * ```ts
 * import type { ServerResponse } from 'node:http'
 * import type { RejectionResponse } from 'keywarden'
 *
 * function send(res: ServerResponse, response: RejectionResponse) {
 *   res.writeHead(response.status, response.headers).end(response.body)
 * }
 * ```
 */
export interface RejectionResponse {
  /** The HTTP status to answer with. */
  readonly status: RejectionStatus
  /** `Content-Type`, `Cache-Control` and, as applicable, `WWW-Authenticate`, `Retry-After`, `RateLimit` and `RateLimit-Policy`. */
  readonly headers: Readonly<Record<string, string>>
  /** The serialised {@link ProblemDetails}. */
  readonly body: string
  /** The `code` inside the body. */
  readonly code: ProblemCode
}

/** Default `detail` texts by code. */
export const DEFAULT_MESSAGES: Readonly<Record<ProblemCode, string>> = {
  missing_credentials: 'An API key is required. Send it as "Authorization: Bearer <key>" or in the X-API-Key header.',
  invalid_request: 'The request carries a malformed or ambiguous credential.',
  invalid_token: 'The API key is not valid.',
  insufficient_scope: 'The API key does not grant the scopes this request needs.',
  wrong_key_type: 'This route does not accept API keys of this type.',
  check_failed: 'The API key may not make this request.',
  rate_limited: 'Too many requests with this API key. Retry after the number of seconds in Retry-After.',
  usage_exceeded: 'The usage credits of this API key are spent.',
  service_unavailable: 'API keys cannot be checked right now. Try again later.',
}

/** The settings that shape the responses. */
export interface ResponseSettings {
  readonly realm: string
  /** Scheme names as they appear in challenges, e.g. `['Bearer', 'Api-Key']`. */
  readonly challengeSchemes: readonly string[]
  readonly requiredScopes: readonly string[]
  readonly messages: Readonly<Record<ProblemCode, string>>
  readonly retryAfterSeconds: number
  /** Whether 429s carry `RateLimit` and `RateLimit-Policy`. */
  readonly rateLimitHeaders: boolean
}

function challenge(settings: ResponseSettings, params: string): string {
  const suffix = params ? `, ${params}` : ''
  // RFC 6750's `error` and `scope` mean nothing to Basic (RFC 7617): its challenge names the realm and
  // the one charset it may declare, which is the only one keywarden decodes.
  return settings.challengeSchemes
    .map((scheme) => (scheme.toLowerCase() === 'basic' ? `${scheme} realm="${settings.realm}", charset="UTF-8"` : `${scheme} realm="${settings.realm}"${suffix}`))
    .join(', ')
}

function build(
  status: RejectionResponse['status'],
  code: ProblemCode,
  settings: ResponseSettings,
  extraHeaders: Record<string, string>,
): RejectionResponse {
  const { headers, body } = problemAnswer(status, code, settings.messages[code], {}, extraHeaders)
  return Object.freeze({ status, code, headers, body })
}

/** Builds the five responses for one configuration. */
export function buildResponses(settings: ResponseSettings) {
  const scope = settings.requiredScopes.join(' ')
  return Object.freeze({
    missing: build(401, 'missing_credentials', settings, { 'WWW-Authenticate': challenge(settings, '') }),
    invalidRequest: build(400, 'invalid_request', settings, { 'WWW-Authenticate': challenge(settings, 'error="invalid_request"') }),
    invalidToken: build(401, 'invalid_token', settings, { 'WWW-Authenticate': challenge(settings, 'error="invalid_token"') }),
    insufficientScope: build(403, 'insufficient_scope', settings, {
      'WWW-Authenticate': challenge(settings, `error="insufficient_scope"${scope ? `, scope="${scope}"` : ''}`),
    }),
    unavailable: build(503, 'service_unavailable', settings, { 'Retry-After': String(settings.retryAfterSeconds) }),
    wrongKeyType: build(403, 'wrong_key_type', settings, {}),
    checkFailed: build(403, 'check_failed', settings, {}),
  })
}

/** The 403 for scopes a route computed from the request: its challenge names them. */
export function insufficientScopeFor(settings: ResponseSettings, scopes: readonly string[]): RejectionResponse {
  const scope = scopes.join(' ')
  return build(403, 'insufficient_scope', settings, { 'WWW-Authenticate': challenge(settings, `error="insufficient_scope"${scope ? `, scope="${scope}"` : ''}`) })
}

/**
 * The 429 for one refusal. Built per request, because `Retry-After`, `t` and `violated-policies` change
 * with the clock and the limits; nothing in it comes from the request.
 */
export function buildLimitRejection(settings: ResponseSettings, refusal: LimitRefusal, now: number): RejectionResponse {
  const code: ProblemCode = refusal.reason
  const violated = refusal.reason === 'rate_limited' ? [...refusal.violated] : ['credits']
  const problem: ProblemDetails = {
    type: QUOTA_EXCEEDED_TYPE,
    title: statusTitle(429),
    status: 429,
    detail: settings.messages[code],
    code,
    'violated-policies': violated,
  }
  const retryAfter = retryAfterSeconds(refusal, now)
  return Object.freeze({
    status: 429,
    code,
    headers: Object.freeze({
      'Content-Type': 'application/problem+json',
      'Cache-Control': 'no-store',
      ...(retryAfter === null ? {} : { 'Retry-After': String(retryAfter) }),
      ...(settings.rateLimitHeaders ? rateLimitHeaders(refusal.limits, now) : {}),
    }),
    body: JSON.stringify(problem),
  })
}

/** The headers of an accepted request: the rate-limit fields, unless turned off. */
export function acceptedHeaders(settings: Pick<ResponseSettings, 'rateLimitHeaders'>, limits: readonly LimitState[], now: number): Readonly<Record<string, string>> {
  return Object.freeze(settings.rateLimitHeaders ? { ...rateLimitHeaders(limits, now) } : {})
}
