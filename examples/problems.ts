/**
 * The example servers' error answers: every failure becomes an RFC 9457 problem body with a stable
 * `code`, like the middlewares' own rejections, and never repeats what the client sent.
 */
import { STATUS_CODES } from 'node:http'
import { ConflictError, KeyNotFoundError, QuotaExceededError, StoreError, ValidationError } from 'keywarden'

/** An RFC 9457 problem body; `code` is what clients branch on, extra members add facts (`field`, `limit`). */
export interface Problem {
  readonly type: 'about:blank'
  readonly title: string
  readonly status: number
  readonly detail: string
  readonly code: string
  readonly [extension: string]: unknown
}

/** Sent with every problem: an error answer is never worth caching, and some come from admin routes. */
export const PROBLEM_HEADERS = { 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store' } as const

const REJECTIONS = {
  admin_required: [401, 'This route needs the admin token of the host application in the X-Admin-Token header.'],
  invalid_json: [400, 'The request body is not valid JSON.'],
  body_too_large: [413, 'The request body is too large.'],
  invalid_url_encoding: [400, 'The URL contains a malformed percent-encoding.'],
  not_found: [404, 'No route matches this method and path.'],
} as const satisfies Record<string, readonly [number, string]>

/** The request itself is refused, before any keywarden call. */
export class RequestRejection extends Error {
  readonly code: keyof typeof REJECTIONS

  constructor(code: keyof typeof REJECTIONS) {
    super(REJECTIONS[code][1])
    this.name = 'RequestRejection'
    this.code = code
  }
}

function problem(status: number, code: string, detail: string, extensions: Record<string, unknown> = {}): Problem {
  return { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, code, ...extensions }
}

/** express.json() (body-parser) marks its errors with a `type` and a client-error `status`. */
function bodyParserFailure(error: unknown): { type: string; status: number } | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const { type, status, expose } = error as { type?: unknown; status?: unknown; expose?: unknown }
  if (typeof type !== 'string' || typeof status !== 'number' || expose !== true || status < 400 || status > 499) return undefined
  return { type, status }
}

/** Maps anything a route threw to the problem to answer with. An unexpected error is logged, not described. */
export function problemFor(error: unknown): Problem {
  if (error instanceof RequestRejection) return problem(REJECTIONS[error.code][0], error.code, error.message)
  if (error instanceof ValidationError) return problem(400, error.code, error.message, { field: error.field })
  if (error instanceof KeyNotFoundError) return problem(404, error.code, 'No API key exists with this ID.')
  if (error instanceof QuotaExceededError) return problem(409, error.code, 'The owner already holds the maximum number of API keys.', { limit: error.limit })
  if (error instanceof ConflictError) return problem(409, error.code, error.message)
  if (error instanceof StoreError) return problem(503, error.code, 'The key store is unavailable. Try again later.')
  const parserFailure = bodyParserFailure(error)
  if (parserFailure?.type === 'entity.parse.failed') return problemFor(new RequestRejection('invalid_json'))
  if (parserFailure?.type === 'entity.too.large') return problemFor(new RequestRejection('body_too_large'))
  // Other body-parser refusals (an unsupported charset, say): their status, none of their message.
  if (parserFailure) return problem(parserFailure.status, 'bad_request', 'The request body cannot be read.')
  console.error('[example] unexpected error:', error)
  return problem(500, 'internal_error', 'Something went wrong on our side.')
}
