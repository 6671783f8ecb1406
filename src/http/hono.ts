/**
 * Hono middleware: `import { apiKeyAuth } from 'keywarden/hono'`. Works with Hono 4 on any runtime
 * (Node through `@hono/node-server`, Bun, Deno, Workers): it reads only the Fetch `Request`'s headers.
 * The verified key is `c.get('apiKey')`, typed through Hono's `Variables` ({@link ApiKeyEnv}).
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { apiKeyAuth } from 'keywarden/hono'
 *
 * const app = new Hono()
 * app.get('/me', apiKeyAuth(keys, { environment: 'live' }), (c) => c.json({ key: c.get('apiKey').id }))
 * ```
 *
 * @module keywarden/hono
 */
import type { Context, MiddlewareHandler } from 'hono'
import type { KeyManager } from '../key-manager.js'
import type { ApiKey } from '../types.js'
import { createRequestVerifier, type ApiKeyAuthOptions } from './request-verifier.js'

/**
 * The variables {@link apiKeyAuth} sets on the context. Merge them into your own app's:
 * `new Hono<{ Variables: ApiKeyVariables & { user: User } }>()`.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { apiKeyAuth, type ApiKeyVariables } from 'keywarden/hono'
 *
 * const app = new Hono<{ Variables: ApiKeyVariables & { requestId: string } }>()
 * app.use('/api/*', apiKeyAuth(keys))
 * app.get('/api/me', (c) => c.json({ key: c.get('apiKey').id, scopes: c.get('apiKeyScopes') }))
 * ```
 */
export type ApiKeyVariables = {
  /** The verified API key. */
  apiKey: ApiKey
  /** The verified key's effective scopes (its own, its roles' and its groups'). */
  apiKeyScopes: readonly string[]
}

/**
 * The Hono `Env` of a guarded route: `new Hono<ApiKeyEnv>()` types `c.get('apiKey')` on every route
 * of an app guarded as a whole (`app.use(apiKeyAuth(keys))`). A route guarded on its own
 * (`app.get(path, apiKeyAuth(keys), handler)`) gets the type from the middleware, without it.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { apiKeyAuth, type ApiKeyEnv } from 'keywarden/hono'
 *
 * const api = new Hono<ApiKeyEnv>()
 * api.use(apiKeyAuth(keys, { scopes: ['data:read'] }))
 * api.get('/reports', (c) => c.json({ owner: c.get('apiKey').ownerId }))
 * ```
 */
export type ApiKeyEnv = {
  /** What the middleware sets: `apiKey` and `apiKeyScopes`. */
  Variables: ApiKeyVariables
}

/**
 * Guards a route with an API key. On success the verified key is `c.get('apiKey')`, its effective
 * scopes (its own, its roles' and its groups') `c.get('apiKeyScopes')`, the key's `RateLimit` and
 * `RateLimit-Policy` fields go on the route's response, and `next()` runs; otherwise the middleware
 * answers (400, 401, 403, 429 or 503, RFC 6750 challenge, RFC 9457 problem body) and `next()` is not
 * called. Nothing is thrown into Hono's error handling. `cost`, `scopes` and `check` functions get the
 * context `c`.
 *
 * Repeated header lines reach Hono joined by `, ` (the Fetch `Headers` shape), so two `Authorization`
 * lines are refused as one malformed header: the same 400 as an ambiguous credential, byte for byte,
 * with `reason: 'malformed_header'` for `onReject`.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} at build time for invalid options.
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { apiKeyAuth } from 'keywarden/hono'
 *
 * const app = new Hono()
 * app.get('/reports', apiKeyAuth(keys, { scopes: ['data:read'] }), (c) => c.json({ owner: c.get('apiKey').ownerId }))
 * // Searches weigh 5 units of the key's limits and credits; ingestion keys only for /events:
 * app.get('/search', apiKeyAuth(keys, { cost: (c) => (c.req.path === '/search' ? 5 : 1) }), (c) => c.json({ results: [] }))
 * app.post('/events', apiKeyAuth(keys, { types: ['ingestion'], schemes: ['Bearer', 'Basic'] }), (c) => c.json({ scopes: c.get('apiKeyScopes') }, 202))
 * ```
 */
export function apiKeyAuth(keys: KeyManager, options: ApiKeyAuthOptions<Context> = {}): MiddlewareHandler<ApiKeyEnv> {
  const verifyRequest = createRequestVerifier<Context>(keys, options)
  return async function apiKeyAuthMiddleware(c, next) {
    const decision = await verifyRequest(c.req.raw.headers, c)
    if (!decision.ok) return c.body(decision.body, decision.status, decision.headers)
    c.set('apiKey', decision.key)
    c.set('apiKeyScopes', decision.scopes)
    // Prepared before the route: `c.json()` and friends pick them up without copying the response.
    for (const name in decision.headers) c.header(name, decision.headers[name])
    await next()
    // A route that returned a `Response` of its own skipped the prepared headers: add them now.
    for (const name in decision.headers) if (!c.res.headers.has(name)) c.header(name, decision.headers[name])
    return undefined
  }
}

export type { ApiKeyAuthOptions, Rejection, RejectReason, RequestDecision } from './request-verifier.js'
export { keyManagementRouter } from './management/hono.js'
export type { ManagementRouterOptions, Principal } from './management/index.js'
