/**
 * The Hono form of the management router: a middleware over the Fetch request Hono carries.
 */
import type { Context, MiddlewareHandler } from 'hono'
import type { StatusCode } from 'hono/utils/http-status'
import type { KeyManager } from '../../key-manager.js'
import { fetchRouterRequest, readFetchBody } from './fetch.js'
import type { BodyRead, RouterRequest } from './request.js'
import { ManagementRouterCore, type ManagementRouterOptions } from './router-core.js'

/**
 * The management API as Hono middleware. Give `basePath` (where the settings page calls it) and mount
 * it with `app.use()`: requests below `basePath` are answered, others go on to `next()`. The principal
 * comes from `authorize`, which gets the context `c` (so `c.get('user')` from your session middleware
 * works), never from the body. The router reads and bounds the body itself; a body a validator already
 * read is taken from Hono's cache. What `authorize` or `can` throw goes to `app.onError`.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} for invalid options.
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { keyManagementRouter } from 'keywarden/hono'
 *
 * type User = { id: string; tenantId: string; role: string }
 * const app = new Hono<{ Variables: { user: User | undefined } }>()
 * app.use(
 *   keyManagementRouter(keys, {
 *     basePath: '/api/keys',
 *     authorize: (c) => {
 *       const user = c.get('user') as User | undefined
 *       return user ? { id: user.id, tenantId: user.tenantId, role: user.role } : null
 *     },
 *   }),
 * )
 * ```
 */
export function keyManagementRouter(keys: KeyManager, options: ManagementRouterOptions<Context>): MiddlewareHandler {
  const core = new ManagementRouterCore<Context>(keys, options)
  return async function keyManagementMiddleware(c, next) {
    const answer = await core.handle(honoRouterRequest(c), c)
    if (answer === null) {
      await next()
      return undefined
    }
    return c.newResponse(answer.body, answer.status as StatusCode, answer.headers)
  }
}

function honoRouterRequest(c: Context): RouterRequest {
  const request = c.req.raw
  return {
    ...fetchRouterRequest(request, new URL(request.url)),
    readBody: (limitBytes) => (request.bodyUsed ? cachedBody(c, limitBytes) : readFetchBody(request, limitBytes)),
  }
}

/** The body a Hono validator or handler before the router already read, from Hono's own cache. */
async function cachedBody(c: Context, limitBytes: number): Promise<BodyRead> {
  const text = await c.req.text()
  if (new TextEncoder().encode(text).byteLength > limitBytes) return { kind: 'too_large' }
  return text === '' ? { kind: 'none' } : { kind: 'text', text }
}
