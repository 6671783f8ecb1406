/**
 * The Fetch API adapter: `import { withApiKey } from 'keywarden/fetch'`, for anything whose handlers
 * are `(request: Request) => Response`: Next.js route handlers, `Bun.serve`, `Deno.serve`, Cloudflare
 * Workers, and node through a Fetch server such as `@hono/node-server`. It needs no framework; the
 * management router and the secret scanning handler in the same form are exported here too.
 *
 * @example
 * ```ts
 * import { withApiKey } from 'keywarden/fetch'
 *
 * // Next.js: app/api/me/route.ts
 * export const GET = withApiKey(keys, { scopes: ['data:read'] }, (request, { key }) => Response.json({ key: key.id }))
 * ```
 *
 * @module keywarden/fetch
 */
import type { KeyManager } from '../key-manager.js'
import type { ApiKey } from '../types.js'
import { createRequestVerifier, type ApiKeyAuthOptions } from './request-verifier.js'

/**
 * What a guarded handler gets besides the request: the verified key and its effective scopes.
 *
 * @example
 * ```ts
 * import { withApiKey, type ApiKeyAuth } from 'keywarden/fetch'
 *
 * function report(auth: ApiKeyAuth): Response {
 *   return Response.json({ owner: auth.key.ownerId, canWrite: auth.scopes.includes('data:write') })
 * }
 * export const GET = withApiKey(keys, {}, (request, auth) => report(auth))
 * ```
 */
export interface ApiKeyAuth {
  /** The verified API key. */
  readonly key: ApiKey
  /** The verified key's effective scopes (its own, its roles' and its groups'). */
  readonly scopes: readonly string[]
}

/**
 * A handler {@link withApiKey} guards: the request, what was verified, then whatever the runtime passes
 * after the request (Next.js's route `context`, a Worker's `env` and `ctx`, Bun's `server`).
 *
 * @example
 * ```ts
 * import { withApiKey, type ApiKeyHandler } from 'keywarden/fetch'
 *
 * interface Env { REPORTS: { get(key: string): Promise<string | null> } }
 * // A Cloudflare Worker: `env` and `ctx` come after the request, as the runtime passes them.
 * const handler: ApiKeyHandler<[Env, unknown]> = async (request, { key }, env) => new Response(await env.REPORTS.get(key.ownerId ?? ''))
 * export default { fetch: withApiKey(keys, { scopes: ['data:read'] }, handler) }
 * ```
 */
export type ApiKeyHandler<Args extends unknown[] = []> = (request: Request, auth: ApiKeyAuth, ...args: Args) => Response | Promise<Response>

/**
 * Guards a Fetch API handler with an API key. The guarded function takes the request (and whatever
 * the runtime passes after it, handed on unchanged) and answers a rejection itself: 400, 401, 403, 429
 * or 503, RFC 6750 challenge, RFC 9457 problem body, the same bytes as every other keywarden adapter.
 * Otherwise it calls `handler(request, { key, scopes }, ...rest)` and adds the key's `RateLimit` and
 * `RateLimit-Policy` fields to its response (copying a response whose headers are immutable, such as
 * one from `fetch()`). It never rejects on its own; what `handler` throws propagates. `cost`, `scopes`
 * and `check` functions get the `Request`. The body is never read.
 *
 * A Fetch `Headers` object joins repeated lines with `, `, so two `Authorization` lines arrive as one
 * malformed header: refused with the same 400 as an ambiguous credential, byte for byte
 * (`reason: 'malformed_header'` for `onReject`).
 *
 * @throws {@link keywarden!ConfigError | ConfigError} at build time for invalid options.
 * @example
 * ```ts
 * import { withApiKey } from 'keywarden/fetch'
 *
 * // Next.js route handlers: the route's context comes after the auth.
 * export const GET = withApiKey(keys, { scopes: ['data:read'] }, async (request, { key, scopes }) => Response.json({ owner: key.ownerId, scopes }))
 *
 * // Bun.serve / Deno.serve: one guarded fetch handler; bulk requests weigh 10.
 * const fetchHandler = withApiKey(keys, { cost: (request) => (new URL(request.url).pathname.startsWith('/bulk') ? 10 : 1) }, (request, { key }) =>
 *   new Response(`hello ${key.ownerId}`),
 * )
 * const response = await fetchHandler(new Request('https://api.example.com/bulk', { headers: { authorization: `Bearer ${token}` } }))
 * ```
 */
export function withApiKey<Args extends unknown[] = []>(
  keys: KeyManager,
  options: ApiKeyAuthOptions<Request>,
  handler: ApiKeyHandler<Args>,
): (request: Request, ...args: Args) => Promise<Response> {
  const verifyRequest = createRequestVerifier<Request>(keys, options)
  return async function guarded(request, ...args) {
    const decision = await verifyRequest(request.headers, request)
    if (!decision.ok) return new Response(decision.body, { status: decision.status, headers: decision.headers })
    const response = await handler(request, { key: decision.key, scopes: decision.scopes }, ...args)
    return withHeaders(response, decision.headers)
  }
}

/** The handler's response with the accepted request's headers; a copy when its headers are immutable. */
function withHeaders(response: Response, headers: Readonly<Record<string, string>>): Response {
  let target = response
  for (const name in headers) {
    try {
      target.headers.set(name, headers[name]!)
    } catch {
      // `fetch()` and `Response.redirect()` responses have immutable headers: a copy's are not.
      target = new Response(target.body, target)
      target.headers.set(name, headers[name]!)
    }
  }
  return target
}

export type { ApiKeyAuthOptions, Rejection, RejectReason, RequestDecision } from './request-verifier.js'
export { createManagementHandler, type ManagementHandler } from './management/fetch.js'
export type { ManagementRouterOptions, Principal } from './management/index.js'
export { secretScanningHandler } from './secret-scanning/fetch.js'
export type { SecretScanningOptions } from './secret-scanning/core.js'
export type { GitHubPublicKey } from './secret-scanning/public-keys.js'
