/**
 * A management request as the router core sees it, whatever the framework: method, path below the
 * mount point, query, headers and a way to get the body. Plus the checks on them that come before
 * any route: the body's type and size, and where a state-changing request comes from.
 */
import { invalid, problem, type RouterResponse } from './problems.js'

/** The body as a framework hands it over: raw text, a value its JSON parser made, or too large. */
export type BodyRead = { readonly kind: 'none' } | { readonly kind: 'text'; readonly text: string } | { readonly kind: 'parsed'; readonly value: unknown } | { readonly kind: 'too_large' }

/** One request, framework-neutral. */
export interface RouterRequest {
  /** Upper-case method. */
  readonly method: string
  /** The path below the mount point, starting with `/`; percent-encoded as received. */
  readonly path: string
  readonly query: URLSearchParams
  /** A header's value by lower-case name. */
  header(name: string): string | undefined
  /** Reads the body, at most `limitBytes`. Called once, after authorization. */
  readBody(limitBytes: number): Promise<BodyRead>
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

export function changesState(method: string): boolean {
  return !SAFE_METHODS.has(method)
}

/** Whether the request says it carries a body. */
function hasBody(request: RouterRequest): boolean {
  const length = request.header('content-length')
  return request.header('transfer-encoding') !== undefined || (length !== undefined && length.trim() !== '0')
}

/**
 * Refuses a state-changing request a browser sent from another site. Browsers mark such requests with
 * `Sec-Fetch-Site` and `Origin`; clients that are not browsers send neither and are not affected.
 */
export function crossSiteProblem(request: RouterRequest, allowedOrigins: ReadonlySet<string> | null): RouterResponse | null {
  if (allowedOrigins === null) return null
  const site = request.header('sec-fetch-site')
  if (site === 'same-origin' || site === 'none') return null
  const origin = request.header('origin')
  if (origin !== undefined ? allowedOrigins.has(origin) : site === undefined) return null
  return problem(403, 'cross_site_request', 'State-changing requests must come from an allowed origin.')
}

/**
 * The parsed JSON body of a state-changing request, `{}` for none, or the problem: POST and PATCH must
 * say `application/json` (a form or `text/plain` post from another site cannot), bodies are bounded.
 */
export async function jsonBody(request: RouterRequest, limitBytes: number): Promise<{ value: unknown } | { problem: RouterResponse }> {
  const type = request.header('content-type')
  const needsType = request.method === 'POST' || request.method === 'PATCH' || hasBody(request)
  if (needsType && (type === undefined || !JSON_TYPE.test(type))) {
    return { problem: problem(415, 'unsupported_media_type', 'Send the request body as application/json.') }
  }
  const length = Number(request.header('content-length') ?? 0)
  if (length > limitBytes) return { problem: tooLarge(limitBytes) }
  const read = await request.readBody(limitBytes)
  if (read.kind === 'too_large') return { problem: tooLarge(limitBytes) }
  if (read.kind === 'none') return { value: {} }
  if (read.kind === 'parsed') {
    // A body parser ran first: its value is measured as JSON, so a chunked body has the same bound.
    if (read.value !== undefined && new TextEncoder().encode(JSON.stringify(read.value)).length > limitBytes) return { problem: tooLarge(limitBytes) }
    return { value: read.value === undefined ? {} : read.value }
  }
  if (read.text.trim() === '') return { value: {} }
  try {
    return { value: JSON.parse(read.text) as unknown }
  } catch {
    return { problem: invalid(400, [{ field: '', message: 'the body is not valid JSON' }]) }
  }
}

function tooLarge(limitBytes: number): RouterResponse {
  return problem(413, 'payload_too_large', `The request body is larger than ${limitBytes} bytes.`)
}

/**
 * The version an `If-Match` header asks for: `undefined` without one (or `*`), `null` when it is not
 * a version (`"3"` as the ETag says, or a bare `3`). A weak tag never matches (RFC 9110 compares
 * If-Match strongly): it asks for version 0, which no key has.
 */
export function ifMatchVersion(request: RouterRequest): number | null | undefined {
  const header = request.header('if-match')?.trim()
  if (header === undefined || header === '' || header === '*') return undefined
  const match = /^(W\/)?(?:"(\d{1,15})"|(\d{1,15}))$/.exec(header)
  if (match === null || (match[1] !== undefined && match[2] === undefined)) return null
  return match[1] !== undefined ? 0 : Number(match[2] ?? match[3])
}

/** The query as a plain object: `limit` as a number when it is digits, repeated names refused. */
export function queryObject(query: URLSearchParams): { value: Record<string, unknown> } | { problem: RouterResponse } {
  const value: Record<string, unknown> = {}
  for (const [name, raw] of query) {
    if (Object.hasOwn(value, name)) return { problem: invalid(400, [{ field: name, message: 'must be given once' }]) }
    value[name] = name === 'limit' && /^\d{1,7}$/.test(raw) ? Number(raw) : raw
  }
  return { value }
}

/** The request ID to record with a change: a well-formed `X-Request-Id`, else none. */
export function requestIdOf(request: RouterRequest): string | undefined {
  const id = request.header('x-request-id')
  return id !== undefined && /^[\x21-\x7e]{1,256}$/.test(id) ? id : undefined
}
