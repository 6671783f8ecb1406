/**
 * The Express form of the management router (also plain node `http`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { KeyManager } from '../../key-manager.js'
import { nodeRouterRequest, sendNodeResponse } from './node-request.js'
import { ManagementRouterCore, type ManagementRouterOptions } from './router-core.js'

/**
 * The Express middleware {@link keyManagementRouter} returns. It answers every request below where it
 * is mounted and passes the host's own errors (from `authorize` or `can`) to `next(error)`.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { keyManagementRouter, type KeyManagementMiddleware } from 'keywarden/express'
 *
 * const management: KeyManagementMiddleware = keyManagementRouter(keys, { authorize: (req: express.Request) => null })
 * express().use('/api/keys', management)
 * ```
 */
export type KeyManagementMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => Promise<void>

/**
 * The management API as Express middleware: mount it where the settings page calls it, behind
 * nothing but your session middleware. `express.json()` before it is optional: without it the router
 * reads and bounds the body itself; with it, what the parser refuses goes to your error handler. The
 * principal comes from `authorize`, never from the body.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} for invalid options.
 * @example
 * ```ts
 * import express from 'express'
 * import { keyManagementRouter } from 'keywarden/express'
 *
 * type User = { id: string; tenantId: string; role: string }
 * const app = express()
 * app.use('/api/keys', express.json(), keyManagementRouter(keys, {
 *   authorize: (req: express.Request) => {
 *     const user = (req as express.Request & { user?: User }).user
 *     return user ? { id: user.id, tenantId: user.tenantId, role: user.role } : null
 *   },
 * }))
 * ```
 */
// The default request type is Express's (the global `Express.Request` that session libraries such as
// passport extend with `user`), so `authorize: (req) => req.user …` type-checks as written.
export function keyManagementRouter<R extends IncomingMessage = IncomingMessage & Express.Request>(keys: KeyManager, options: ManagementRouterOptions<R>): KeyManagementMiddleware {
  const core = new ManagementRouterCore<R>(keys, options)
  return async function keyManagementMiddleware(req, res, next) {
    try {
      const request = nodeRouterRequest(req, req.url ?? '/', () => (req as { body?: unknown }).body)
      const answer = await core.handle(request, req as R)
      if (answer === null) {
        next()
        return
      }
      sendNodeResponse(res, answer)
    } catch (error) {
      next(error)
    }
  }
}
