/**
 * Koa middleware: `import { apiKeyAuth } from 'keywarden/koa'`. Works with Koa 2 and 3 and `@koa/router`.
 * Importing it types `ctx.state.apiKey` and `ctx.state.apiKeyScopes` on Koa's `DefaultState`.
 *
 * @example
 * ```ts
 * import Koa from 'koa'
 * import { apiKeyAuth } from 'keywarden/koa'
 *
 * const app = new Koa()
 * app.use(apiKeyAuth(keys, { environment: 'live' }))
 * app.use((ctx) => {
 *   ctx.body = { key: ctx.state.apiKey.id }
 * })
 * ```
 *
 * @module keywarden/koa
 */
import type { IncomingMessage } from 'node:http'
import type {} from 'koa'
import type { KeyManager } from '../key-manager.js'
import type { ApiKey } from '../types.js'
import { createRequestVerifier, type ApiKeyAuthOptions } from './request-verifier.js'

declare module 'koa' {
  // Koa's ctx.state is DefaultState unless an app says otherwise: typing it here makes
  // `ctx.state.apiKey` an ApiKey for every Koa user who imports this module.
  interface DefaultState {
    /** The verified API key; set by `apiKeyAuth` on the routes it guards. */
    apiKey: ApiKey
    /** The verified key's effective scopes (its own, its roles' and its groups'); set with `apiKey`. */
    apiKeyScopes: readonly string[]
  }
}

/**
 * The parts of a Koa context the middleware reads and writes, so that it fits any Koa version's
 * `Context` without depending on Koa's types.
 *
 * @example
 * ```ts
 * import Router from '@koa/router'
 * import type Koa from 'koa'
 * import { apiKeyAuth } from 'keywarden/koa'
 *
 * const guard = apiKeyAuth(keys)
 * const router = new Router()
 * router.get('/me', guard, (ctx: Koa.Context) => {
 *   ctx.body = { owner: ctx.state.apiKey.ownerId }
 * })
 * ```
 */
export interface ApiKeyContext {
  /** Node's request, whose `rawHeaders` carry the credential. */
  req: IncomingMessage
  /** Where the verified key goes, as `state.apiKey`, and its effective scopes, as `state.apiKeyScopes`. */
  state: {
    /** The verified key, set once the middleware accepted the request. */
    apiKey?: ApiKey
    /** The verified key's effective scopes (its own, its roles' and its groups'), set with `apiKey`. */
    apiKeyScopes?: readonly string[]
  } & Record<string, unknown>
  /** Set to 400, 401, 403 or 503 on rejection. */
  status: number
  /** Set to the problem body on rejection. */
  body: unknown
  /** Sets the response headers: a rejection's, or an accepted request's `RateLimit` fields. */
  set(headers: Record<string, string>): void
  /** The request method, for `cost` functions. */
  readonly method: string
  /** The request path, for `cost` functions. */
  readonly path: string
  /** A request header's value (`''` when absent), for `cost` functions. */
  get(field: string): string
}

/**
 * A Koa middleware, as returned by {@link apiKeyAuth}.
 *
 * @example
 * ```ts
 * import Router from '@koa/router'
 * import { apiKeyAuth, type ApiKeyKoaMiddleware } from 'keywarden/koa'
 *
 * const requireWrite: ApiKeyKoaMiddleware = apiKeyAuth(keys, { scopes: ['data:write'] })
 * const router = new Router()
 * router.post('/reports', requireWrite, (ctx) => {
 *   ctx.status = 201
 *   ctx.body = { createdBy: ctx.state.apiKey.ownerId }
 * })
 * ```
 */
export type ApiKeyKoaMiddleware = (ctx: ApiKeyContext, next: () => Promise<unknown>) => Promise<void>

/**
 * Guards a route with an API key. On success the verified key is `ctx.state.apiKey`, its effective
 * scopes (its own, its roles' and its groups') `ctx.state.apiKeyScopes`, the key's
 * `RateLimit` and `RateLimit-Policy` fields are set on the response, and `next()` runs; otherwise the
 * middleware answers (400, 401, 403, 429 or 503, RFC 6750 challenge, RFC 9457 problem body) and
 * `next()` is not called. Nothing is thrown into Koa's error handling. `cost`, `scopes` and `check`
 * functions get `ctx`.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} at build time for invalid options.
 * @example
 * ```ts
 * import Router from '@koa/router'
 * import { apiKeyAuth } from 'keywarden/koa'
 *
 * const router = new Router()
 * router.get('/reports', apiKeyAuth(keys, { scopes: ['data:read'] }), (ctx) => {
 *   ctx.body = { owner: ctx.state.apiKey.ownerId }
 * })
 * // Searches weigh 5 units of the key's limits and credits, everything else 1:
 * router.get('/search', apiKeyAuth(keys, { cost: (ctx) => (ctx.path === '/search' ? 5 : 1) }), (ctx) => {
 *   ctx.body = { results: [] }
 * })
 * // Ingestion keys only, writes need data:write; also accepts `curl -u keyId:secret`:
 * const ingest = apiKeyAuth(keys, { types: ['ingestion'], schemes: ['Bearer', 'Basic'], scopes: (ctx) => (ctx.method === 'GET' ? ['data:read'] : ['data:write']) })
 * router.post('/events', ingest, (ctx) => {
 *   ctx.status = 202
 *   ctx.body = { scopes: ctx.state.apiKeyScopes }
 * })
 * ```
 */
export function apiKeyAuth(keys: KeyManager, options: ApiKeyAuthOptions<ApiKeyContext> = {}): ApiKeyKoaMiddleware {
  const verifyRequest = createRequestVerifier<ApiKeyContext>(keys, options)
  return async function apiKeyAuthMiddleware(ctx, next) {
    const decision = await verifyRequest(ctx.req.rawHeaders ?? ctx.req.headers, ctx)
    if (!decision.ok) {
      ctx.status = decision.status
      // Headers first: Koa keeps an existing Content-Type when the body is assigned.
      ctx.set({ ...decision.headers })
      ctx.body = decision.body
      return
    }
    if (Object.keys(decision.headers).length > 0) ctx.set({ ...decision.headers })
    ctx.state.apiKey = decision.key
    ctx.state.apiKeyScopes = decision.scopes
    await next()
  }
}

export type { ApiKeyAuthOptions, Rejection, RejectReason, RequestDecision } from './request-verifier.js'
export { keyManagementRouter, type KeyManagementKoaMiddleware } from './management/koa.js'
export type { ManagementRouterOptions, Principal } from './management/index.js'
export { secretScanningHandler, type SecretScanningContext, type SecretScanningKoaMiddleware, type SecretScanningOptions, type GitHubPublicKey } from './secret-scanning/koa.js'
