/**
 * The example servers' error answers: every failure becomes an RFC 9457 problem body with a stable
 * `code`, like the middlewares' own rejections, and never repeats what the client sent.
 */
import { STATUS_CODES } from 'node:http'

/** An RFC 9457 problem body; `code` is what clients branch on, extra members add facts (`field`, `limit`). */
export interface Problem {
  readonly type: 'about:blank'
  readonly title: string
  readonly status: number
  readonly detail: string
  readonly code: string
  readonly [extension: string]: unknown
}

/** Sent with every problem: an error answer is never worth caching. */
export const PROBLEM_HEADERS = { 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store' } as const

const REJECTIONS = {
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

/** Maps anything a route threw to the problem to answer with. An unexpected error is logged, not described. */
export function problemFor(error: unknown): Problem {
  if (error instanceof RequestRejection) return problem(REJECTIONS[error.code][0], error.code, error.message)
  console.error('[example] unexpected error:', error)
  return problem(500, 'internal_error', 'Something went wrong on our side.')
}
