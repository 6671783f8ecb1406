/**
 * Finding the one credential in a request's headers. Pure and synchronous; knows nothing about keys.
 */
import type { KeyCredential } from '../token/key-pair.js'

/**
 * Request headers in any of the shapes frameworks hand out:
 * - node's `rawHeaders` (`[name, value, name, value, ...]`), the only shape that shows repeated
 *   `Authorization` lines (node keeps just the first in `req.headers`);
 * - a Fetch API `Headers` object (or anything with `get(name)`), as in Hono, Next.js, Workers;
 * - a plain object such as node's `IncomingHttpHeaders` or Fastify's `request.headers`.
 *
 * @example
 * ```ts
 * import type { IncomingMessage } from 'node:http'
 * import { createRequestVerifier, type RequestHeaders } from 'keywarden'
 *
 * const check = createRequestVerifier(keys)
 * declare const req: IncomingMessage // node's request
 * declare const request: Request // a Fetch API request (Hono, Next.js, Workers)
 *
 * await check(req.rawHeaders) // node: sees every repeated header
 * await check(request.headers) // Fetch API Headers
 * const plain: RequestHeaders = { authorization: `Bearer ${token}` } // or a plain object
 * await check(plain)
 * ```
 */
export type RequestHeaders =
  | readonly string[]
  | {
      /** The header's value (repeated values joined by `, `), or `null` when absent. */
      get(name: string): string | null
    }
  | Readonly<Record<string, string | readonly string[] | undefined>>

/** Where a credential may come from: an `Authorization` scheme, or a dedicated header. */
export interface CredentialSources {
  /** Accepted `Authorization` schemes, lower-cased (e.g. `api-key`, `bearer`). */
  readonly schemes: ReadonlySet<string>
  /** Lower-cased name of the dedicated header (e.g. `x-api-key`), or `null` for none. */
  readonly header: string | null
}

/** What the headers hold. */
export type CredentialLookup =
  | { readonly kind: 'token'; readonly token: string | KeyCredential }
  | { readonly kind: 'missing' }
  | { readonly kind: 'unsupported_scheme' }
  | { readonly kind: 'malformed_header' }
  | { readonly kind: 'ambiguous' }

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const UTF8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The key ID and secret of an HTTP Basic credential (RFC 7617: base64 of `user-id:password`, what
 * `curl -u keyId:secret` sends), split at the first colon; `null` for malformed base64, text that is
 * not UTF-8, no colon, or an empty part. Their shape is checked by verify, like a token's.
 */
function basicCredential(encoded: string): KeyCredential | null {
  if (!STRICT_BASE64.test(encoded)) return null
  let text: string
  try {
    text = UTF8.decode(Uint8Array.from(atob(encoded), (char) => char.charCodeAt(0)))
  } catch {
    return null
  }
  const colon = text.indexOf(':')
  if (colon <= 0 || colon === text.length - 1) return null
  return { keyId: text.slice(0, colon), secret: text.slice(colon + 1) }
}

// RFC 9110 token (the scheme name) followed by one or more spaces and the rest.
const AUTHORIZATION_PATTERN = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?$/s
// RFC 6750 b64token: what a credential may look like in a header at all.
const B64TOKEN_PATTERN = /^[A-Za-z0-9\-._~+/]+=*$/
// Where a Fetch `Headers` object joined two Authorization lines: a comma, then another scheme and a
// space. (An auth-param such as `realm="x"` has no space after its name, so one line is not split.)
const JOINED_CREDENTIAL = /,[ \t]*(?=[!#$%&'*+.^_`|~0-9A-Za-z-]+ )/

function valuesOf(headers: RequestHeaders, wanted: string): string[] {
  const values: string[] = []
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if ((headers[i] as string).toLowerCase() === wanted) values.push(headers[i + 1] as string)
    }
  } else if (typeof (headers as { get?: unknown }).get === 'function') {
    const value = (headers as { get(name: string): string | null }).get(wanted)
    // Headers joins repeated lines with ", ": split Authorization back, so two lines stay ambiguous
    // (a dedicated header's list is malformed anyway: a comma is not in a token).
    if (value !== null && value !== undefined) values.push(...(wanted === 'authorization' ? String(value).split(JOINED_CREDENTIAL) : [String(value)]))
  } else {
    for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
      if (name.toLowerCase() !== wanted || value === undefined) continue
      if (Array.isArray(value)) values.push(...value.map(String))
      else values.push(String(value))
    }
  }
  return values
}

/**
 * Finds the credential. Exactly one credential is accepted: two `Authorization` lines, two dedicated
 * header lines, or one of each is ambiguous. A header that cannot hold a credential at all (empty,
 * several words, a list) is malformed. An `Authorization` header with a scheme that is not accepted is
 * not ours: it counts as no credential. Nothing is trimmed or normalised beyond what HTTP parsing did.
 */
export function findCredential(headers: RequestHeaders, sources: CredentialSources): CredentialLookup {
  const found: (string | KeyCredential)[] = []
  let unsupported = false
  if (sources.schemes.size > 0) {
    const lines = valuesOf(headers, 'authorization')
    if (lines.length > 1) return { kind: 'ambiguous' }
    const line = lines[0]
    if (line !== undefined) {
      const match = AUTHORIZATION_PATTERN.exec(line)
      if (match === null) return { kind: 'malformed_header' }
      const scheme = match[1]!.toLowerCase()
      if (sources.schemes.has(scheme)) {
        const credential = match[2]
        if (credential === undefined || !B64TOKEN_PATTERN.test(credential)) return { kind: 'malformed_header' }
        if (scheme === 'basic') {
          const pair = basicCredential(credential)
          if (pair === null) return { kind: 'malformed_header' }
          found.push(pair)
        } else {
          found.push(credential)
        }
      } else {
        unsupported = true
      }
    }
  }
  if (sources.header !== null) {
    for (const value of valuesOf(headers, sources.header)) {
      if (!B64TOKEN_PATTERN.test(value)) return { kind: 'malformed_header' }
      found.push(value)
    }
  }
  if (found.length > 1) return { kind: 'ambiguous' }
  if (found.length === 1) return { kind: 'token', token: found[0]! }
  return unsupported ? { kind: 'unsupported_scheme' } : { kind: 'missing' }
}
