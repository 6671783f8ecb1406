/**
 * The Koa form of the management router.
 */
import type { KeyManager } from '../../key-manager.js'
import type { ApiKeyContext } from '../koa.js'
import { nodeRouterRequest } from './node-request.js'
import { ManagementRouterCore, type ManagementRouterOptions } from './router-core.js'

/**
 * The Koa middleware {@link keyManagementRouter} returns. Requests outside `basePath` go on to `next`.
 *
 * @example
 * ```ts
 * import Koa from 'koa'
 * import { keyManagementRouter, type KeyManagementKoaMiddleware } from 'keywarden/koa'
 *
 * const management: KeyManagementKoaMiddleware = keyManagementRouter(keys, { basePath: '/api/keys', authorize: () => null })
 * new Koa().use(management)
 * ```
 */
export type KeyManagementKoaMiddleware = (ctx: ApiKeyContext, next: () => Promise<unknown>) => Promise<void>

/**
 * The management API as Koa middleware. Give `basePath` (or mount it with `koa-mount`); a body a
 * body parser left on `ctx.request.body` is used, otherwise it reads the body itself. What
 * `authorize` or `can` throw propagates to Koa's error handling.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} for invalid options.
 * @example
 * ```ts
 * import Koa from 'koa'
 * import { keyManagementRouter } from 'keywarden/koa'
 *
 * type User = { id: string; tenantId: string; role: string }
 * const app = new Koa()
 * app.use(keyManagementRouter(keys, {
 *   basePath: '/api/keys',
 *   authorize: (ctx: Koa.Context) => {
 *     const user = ctx.state['user'] as User | undefined
 *     return user ? { id: user.id, tenantId: user.tenantId, role: user.role } : null
 *   },
 * }))
 * ```
 */
export function keyManagementRouter<C extends ApiKeyContext = ApiKeyContext>(keys: KeyManager, options: ManagementRouterOptions<C>): KeyManagementKoaMiddleware {
  const core = new ManagementRouterCore<C>(keys, options)
  return async function keyManagementMiddleware(ctx, next) {
    const request = nodeRouterRequest(ctx.req, ctx.req.url ?? '/', () => (ctx as { request?: { body?: unknown } }).request?.body)
    const answer = await core.handle(request, ctx as C)
    if (answer === null) {
      await next()
      return
    }
    ctx.status = answer.status
    ctx.set({ ...answer.headers })
    ctx.body = answer.body
  }
}
