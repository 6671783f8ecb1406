/**
 * The Fetch form of the management router: `(request: Request) => Promise<Response>`, for Next.js
 * route handlers, Bun, Deno, Workers and anything else speaking the Fetch API.
 */
import type { KeyManager } from '../../key-manager.js'
import { NOT_FOUND, type RouterResponse } from './problems.js'
import type { BodyRead, RouterRequest } from './request.js'
import { ManagementRouterCore, type ManagementRouterOptions } from './router-core.js'

/**
 * A Fetch handler answering the management API below `basePath`.
 *
 * @example
 * ```ts
 * import { createManagementHandler } from 'keywarden'
 *
 * declare function sessionOf(request: Request): Promise<{ userId: string; orgId: string; role: string } | null>
 *
 * // Next.js: app/api/keys/[[...path]]/route.ts
 * const handler = createManagementHandler(keys, {
 *   basePath: '/api/keys',
 *   authorize: async (request) => {
 *     const session = await sessionOf(request)
 *     return session && { id: session.userId, tenantId: session.orgId, role: session.role }
 *   },
 * })
 * export { handler as GET, handler as POST, handler as PATCH, handler as DELETE }
 * ```
 */
export type ManagementHandler = (request: Request) => Promise<Response>

/**
 * Builds the Fetch form of the management router. Requests outside `basePath` get a 404 problem.
 * What `authorize` or `can` throw rejects the returned promise.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} for invalid options.
 * @example
 * ```ts
 * import { createManagementHandler } from 'keywarden'
 *
 * const handler = createManagementHandler(keys, {
 *   basePath: '/api/keys',
 *   authorize: (request) => (request.headers.get('x-user') === 'ana' ? { id: 'ana', tenantId: 'acme', role: 'admin' } : null),
 * })
 * const response = await handler(new Request('https://app.example.com/api/keys'))
 * console.info(response.status) // 401 without the header
 * ```
 */
export function createManagementHandler(keys: KeyManager, options: ManagementRouterOptions<Request>): ManagementHandler {
  const core = new ManagementRouterCore<Request>(keys, options)
  return async (request) => {
    const url = new URL(request.url)
    const answer = await core.handle(fetchRouterRequest(request, url), request)
    return toResponse(answer ?? NOT_FOUND)
  }
}

/** A Fetch `Request` as a router request (also the Hono form's). */
export function fetchRouterRequest(request: Request, url: URL): RouterRequest {
  return {
    method: request.method.toUpperCase(),
    path: url.pathname,
    query: url.searchParams,
    header: (name) => request.headers.get(name) ?? undefined,
    readBody: (limitBytes) => readFetchBody(request, limitBytes),
  }
}

/** The body of a Fetch request, at most `limitBytes` (the rest is not read). */
export async function readFetchBody(request: Request, limitBytes: number): Promise<BodyRead> {
  if (request.body === null) return { kind: 'none' }
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limitBytes) {
      await reader.cancel()
      return { kind: 'too_large' }
    }
    chunks.push(value)
  }
  if (size === 0) return { kind: 'none' }
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return { kind: 'text', text: new TextDecoder().decode(bytes) }
}

function toResponse(answer: RouterResponse): Response {
  return new Response(answer.body, { status: answer.status, headers: answer.headers })
}
