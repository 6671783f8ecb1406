/**
 * The Fastify form of the management router: an encapsulated plugin, registered with a `prefix`.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { KeyManager } from '../../key-manager.js'
import { nodeRouterRequest } from './node-request.js'
import { ManagementRouterCore, type ManagementRouterOptions } from './router-core.js'

/**
 * The management API as a Fastify plugin: register it with the `prefix` the settings page calls, e.g.
 * `/api/keys`. It is encapsulated on purpose (unlike `apiKeyPlugin`): it replaces the content-type
 * parsers in its own scope only, so that the router reads and bounds the body itself (`bodyLimit`) and
 * answers a malformed or oversized body with its own problem, while the rest of the app keeps its
 * parsers. The principal comes from `authorize` (which gets the `FastifyRequest`), never from the body;
 * what `authorize` or `can` throw goes to Fastify's error handling.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} for invalid options.
 * @example
 * ```ts
 * import Fastify, { type FastifyRequest } from 'fastify'
 * import { keyManagementRouter } from 'keywarden/fastify'
 *
 * declare function sessionUser(request: FastifyRequest): Promise<{ id: string; orgId: string; role: string } | null>
 *
 * const app = Fastify()
 * await app.register(
 *   keyManagementRouter(keys, {
 *     authorize: async (request) => {
 *       const user = await sessionUser(request)
 *       return user && { id: user.id, tenantId: user.orgId, role: user.role }
 *     },
 *     allowedOrigins: ['https://app.example.com'],
 *   }),
 *   { prefix: '/api/keys' },
 * )
 * ```
 */
export function keyManagementRouter<R extends FastifyRequest = FastifyRequest>(keys: KeyManager, options: ManagementRouterOptions<R>): FastifyPluginAsync {
  const core = new ManagementRouterCore<R>(keys, options)
  const plugin: FastifyPluginAsync = async function keywardenManagement(scope) {
    const prefix = scope.prefix
    // In this scope only: no parser reads the body, the router does (after authorization, bounded).
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_request: FastifyRequest, _payload: unknown, done: (error: Error | null, body?: unknown) => void) => done(null))
    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      const url = relativeUrl(request.raw.url ?? '/', prefix, request.params)
      const answer = await core.handle(
        nodeRouterRequest(request.raw, url, () => undefined),
        request as R,
      )
      if (answer === null) return reply.callNotFound()
      reply.code(answer.status).headers(answer.headers)
      // A Buffer, sent as is (a string would get a charset added to its Content-Type).
      return reply.send(answer.body === null ? undefined : Buffer.from(answer.body))
    }
    scope.all('/', handler)
    scope.all('/*', handler)
  }
  return Object.assign(plugin, { [Symbol.for('fastify.display-name')]: 'keywarden-management' })
}

/** The URL below the plugin's prefix, still percent-encoded (the router decodes each segment itself). */
function relativeUrl(url: string, prefix: string, params: unknown): string {
  if (url.slice(0, prefix.length).toLowerCase() === prefix.toLowerCase()) {
    const rest = url.slice(prefix.length)
    return rest.startsWith('/') ? rest : `/${rest}`
  }
  // Fastify matched a URL that does not start with the prefix as written (`ignoreDuplicateSlashes`):
  // rebuild it from the wildcard, which Fastify has decoded.
  const wildcard = (params as Record<string, string | undefined> | null)?.['*'] ?? ''
  const queryAt = url.indexOf('?')
  return `/${wildcard.split('/').map(encodeURIComponent).join('/')}${queryAt === -1 ? '' : url.slice(queryAt)}`
}
