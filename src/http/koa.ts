/**
 * Koa middleware: `import { apiKeyAuth } from 'keywarden/koa'`. Works with Koa 2 and 3 and `@koa/router`.
 *
 * @packageDocumentation
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
  }
}

/** The parts of a Koa context the middleware reads and writes. */
export interface ApiKeyContext {
  req: IncomingMessage
  state: { apiKey?: ApiKey } & Record<string, unknown>
  status: number
  body: unknown
  set(headers: Record<string, string>): void
}

/** A Koa middleware. */
export type ApiKeyKoaMiddleware = (ctx: ApiKeyContext, next: () => Promise<unknown>) => Promise<void>

/**
 * Guards a route with an API key. On success the verified key is `ctx.state.apiKey` and `next()` runs;
 * otherwise the middleware answers (400, 401, 403 or 503, RFC 6750 challenge, RFC 9457 problem body)
 * and `next()` is not called. Nothing is thrown into Koa's error handling.
 *
 * @throws {@link ConfigError} at build time for invalid options.
 * @example
 * ```ts
 * import Router from '@koa/router'
 * import { apiKeyAuth } from 'keywarden/koa'
 *
 * const router = new Router()
 * router.get('/reports', apiKeyAuth(keys, { scopes: ['data:read'] }), (ctx) => {
 *   ctx.body = { owner: ctx.state.apiKey.ownerId }
 * })
 * ```
 */
export function apiKeyAuth(keys: KeyManager, options: ApiKeyAuthOptions = {}): ApiKeyKoaMiddleware {
  const verifyRequest = createRequestVerifier(keys, options)
  return async function apiKeyAuthMiddleware(ctx, next) {
    const decision = await verifyRequest(ctx.req.rawHeaders ?? ctx.req.headers)
    if (!decision.ok) {
      ctx.status = decision.status
      // Headers first: Koa keeps an existing Content-Type when the body is assigned.
      ctx.set({ ...decision.headers })
      ctx.body = decision.body
      return
    }
    ctx.state.apiKey = decision.key
    await next()
  }
}

export type { ApiKeyAuthOptions, Rejection, RejectReason, RequestDecision } from './request-verifier.js'
