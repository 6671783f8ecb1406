/**
 * Fastify: `import { apiKeyAuth, apiKeyPlugin } from 'keywarden/fastify'`. Works with Fastify 4 and 5.
 * Importing it types `request.apiKey` and `request.apiKeyScopes` on Fastify's `FastifyRequest`.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { apiKeyAuth } from 'keywarden/fastify'
 *
 * const app = Fastify()
 * app.get('/me', { onRequest: apiKeyAuth(keys, { environment: 'live' }) }, async (request) => ({ key: request.apiKey.id }))
 * ```
 *
 * @module keywarden/fastify
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { KeyManager } from '../key-manager.js'
import type { ApiKey } from '../types.js'
import { createRequestVerifier, type ApiKeyAuthOptions } from './request-verifier.js'

declare module 'fastify' {
  // Declaration merging types `request.apiKey` for every Fastify user who imports this module, as
  // Fastify's own plugins do for their decorators.
  interface FastifyRequest {
    /** The verified API key; set by `apiKeyAuth` or `apiKeyPlugin` on the routes they guard. */
    apiKey: ApiKey
    /** The verified key's effective scopes (its own, its roles' and its groups'); set with `apiKey`. */
    apiKeyScopes: readonly string[]
  }
}

/**
 * A Fastify hook, as returned by {@link apiKeyAuth}: give it to a route's `onRequest` (the request is
 * refused before its body is read) or `preHandler` (after parsing and validation, so `cost`, `scopes`
 * and `check` can read `request.body`), or to `addHook` for a whole scope.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { apiKeyAuth, type ApiKeyHook } from 'keywarden/fastify'
 *
 * const requireRead: ApiKeyHook = apiKeyAuth(keys, { scopes: ['data:read'] })
 * const app = Fastify()
 * app.get('/reports', { onRequest: requireRead }, async (request) => ({ owner: request.apiKey.ownerId }))
 * ```
 */
export type ApiKeyHook = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>

/**
 * Guards a route with an API key. On success the verified key is `request.apiKey`, its effective
 * scopes (its own, its roles' and its groups') `request.apiKeyScopes`, the key's `RateLimit` and
 * `RateLimit-Policy` fields are set on the reply, and the route goes on; otherwise the hook answers
 * (400, 401, 403, 429 or 503, RFC 6750 challenge, RFC 9457 problem body, the same bytes as every other
 * keywarden adapter) and the handler never runs. Nothing is thrown into Fastify's error handling, and
 * headers are never logged. `cost`, `scopes` and `check` functions get the `FastifyRequest`.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} at build time for invalid options.
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { apiKeyAuth } from 'keywarden/fastify'
 *
 * const app = Fastify()
 * app.get('/reports', { onRequest: apiKeyAuth(keys, { scopes: ['data:read'], environment: 'live' }) }, async (request) => {
 *   return { owner: request.apiKey.ownerId, scopes: request.apiKeyScopes }
 * })
 * // preHandler runs after the body is parsed: an import weighs one unit per record, capped.
 * const weighed = apiKeyAuth(keys, { cost: (request) => Math.min(100, Array.isArray(request.body) ? request.body.length : 1) })
 * app.post('/imports', { preHandler: weighed }, async (request, reply) => reply.code(202).send({ owner: request.apiKey.ownerId }))
 * ```
 */
export function apiKeyAuth(keys: KeyManager, options: ApiKeyAuthOptions<FastifyRequest> = {}): ApiKeyHook {
  const verifyRequest = createRequestVerifier<FastifyRequest>(keys, options)
  return async function apiKeyAuthHook(request, reply) {
    const decision = await verifyRequest(request.raw.rawHeaders ?? request.headers, request)
    if (!decision.ok) {
      // A Buffer, because Fastify sends it as is: a string would get `; charset=utf-8` added to the
      // Content-Type. Returning the reply makes Fastify wait for it to be sent (async onSend hooks
      // included) instead of going on to the handler.
      return reply.code(decision.status).headers(decision.headers).send(Buffer.from(decision.body))
    }
    // Before the handler: it may send the reply at once.
    for (const name in decision.headers) reply.header(name, decision.headers[name])
    request.apiKey = decision.key
    request.apiKeyScopes = decision.scopes
    return undefined
  }
}

/**
 * Guards every route of the scope it is registered in, with one `onRequest` hook, and declares
 * `request.apiKey` / `request.apiKeyScopes` (as `null` until verified) so that requests keep one shape.
 *
 * Encapsulation: the plugin is marked `skip-override` (what `fastify-plugin` does, without depending on
 * it), so its hook lands in the scope that registers it, not in a child scope of its own that holds no
 * routes. Registered on the root instance it guards the whole app; registered inside
 * `app.register(async (scope) => { ... })` it guards that scope and its children only, never the
 * parent or sibling scopes, and routes registered before it in the same scope are guarded too.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} at build time for invalid options.
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { apiKeyPlugin } from 'keywarden/fastify'
 *
 * const app = Fastify()
 * app.get('/health', async () => ({ ok: true })) // public: outside the guarded scope
 * await app.register(async (api) => {
 *   await api.register(apiKeyPlugin(keys, { scopes: ['data:read'] }))
 *   api.get('/reports', async (request) => ({ owner: request.apiKey.ownerId }))
 * }, { prefix: '/api' })
 * ```
 */
export function apiKeyPlugin(keys: KeyManager, options: ApiKeyAuthOptions<FastifyRequest> = {}): FastifyPluginAsync {
  const hook = apiKeyAuth(keys, options)
  const plugin: FastifyPluginAsync = async function keywardenApiKeys(scope) {
    // Guarded: a request decorator declared twice on one scope chain throws. `null` until verified
    // (Fastify's typing wants the declared type, which is what guarded routes see: hence the widened name).
    for (const name of ['apiKey', 'apiKeyScopes'] as string[]) if (!scope.hasRequestDecorator(name)) scope.decorateRequest(name, null)
    scope.addHook('onRequest', hook)
  }
  return Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'keywarden',
    // Fastify refuses to register a plugin whose `fastify` range its version does not satisfy.
    [Symbol.for('plugin-meta')]: { name: 'keywarden', fastify: '>=4' },
  })
}

export type { ApiKeyAuthOptions, Rejection, RejectReason, RequestDecision } from './request-verifier.js'
export { keyManagementRouter } from './management/fastify.js'
export type { ManagementRouterOptions, Principal } from './management/index.js'
