/**
 * The management router's core, shared by the Express, Koa, Fastify, Hono and Fetch forms: a framework-neutral
 * request in, a response out. In order: the route (404, 405), the principal (401), where a change
 * comes from (403), the body's type, size and syntax (415, 413, 400), the query and headers (400), the
 * key and what the principal may do to it (404, 403), the body's fields (422), then the route.
 */
import * as z from 'zod/mini'
import { ConfigError, ValidationError } from '../../errors.js'
import type { KeyManager } from '../../key-manager.js'
import { parseDuration, type Duration } from '../../policy/duration.js'
import { idempotencyKeySchema, toIssues } from '../../validation.js'
import { CeilingResolver } from './ceiling.js'
import { managementDocument, type ManagementDocumentOptions } from './openapi.js'
import { defaultPolicy, normalizePrincipal, principalSchema, type ManagementPolicy, type Principal } from './principal.js'
import { invalid, invalidInput, NOT_FOUND, problem, problemForError, UNAUTHORIZED, VERSION_MISMATCH, type RouterResponse } from './problems.js'
import { changesState, crossSiteProblem, ifMatchVersion, jsonBody, queryObject, requestIdOf, type RouterRequest } from './request.js'
import { matchRoute } from './route-table.js'
import { BAD_IF_MATCH, ManagementRoutes } from './routes.js'
import { requestSchemas, type RequestSchemas } from './schemas.js'

/**
 * The options of the management router, in every form (`R` is the framework's request: Express's
 * `req`, Koa's `ctx`, a Fetch `Request`).
 *
 * @example
 * ```ts
 * import type { ManagementRouterOptions } from 'keywarden'
 *
 * declare function sessionUser(request: Request): Promise<{ id: string; orgId: string; isAdmin: boolean } | null>
 *
 * const options: ManagementRouterOptions<Request> = {
 *   authorize: async (request) => {
 *     const user = await sessionUser(request)
 *     return user && { id: user.id, tenantId: user.orgId, role: user.isAdmin ? 'admin' : 'member' }
 *   },
 *   allowedOrigins: ['https://app.example.com'],
 *   types: ['access', 'ingest'],
 * }
 * ```
 */
export interface ManagementRouterOptions<R> {
  /**
   * Who is asking, from the host's own login: a {@link Principal}, or `null` (answered 401). Never
   * build it from the request body. What it throws goes to the framework's error handling.
   */
  authorize: (request: R) => Principal | null | Promise<Principal | null>
  /**
   * Replaces the default policy (admins manage their tenant's keys; others their own, without
   * changing credits or re-enabling a key someone else disabled). Never asked about another tenant's key.
   */
  can?: ManagementPolicy
  /** The principal roles that count as admins for the default policy and ceiling. Default `['admin']`. */
  adminRoles?: readonly string[]
  /**
   * Origins (`https://app.example.com`) that may send state-changing requests. When given, a browser
   * request from another origin is refused (403 `cross_site_request`); set it when your login is a cookie.
   */
  allowedOrigins?: readonly string[]
  /** The largest request body accepted, bytes. Default 16,384 (metadata may be 8 KiB). */
  bodyLimit?: number
  /** Key types offered by `GET /meta` (keys' `type` labels). Default none. */
  types?: readonly string[]
  /** The scopes a settings page offers; `GET /meta` lists those the principal may grant. Default: the principal's ceiling patterns. */
  scopes?: readonly string[]
  /** Expiry choices offered by `GET /meta`; those beyond `expiry.max` are left out. Default `['30d', '60d', '90d']`. */
  expiryPresets?: readonly Duration[]
  /** The mount path to strip from request paths (Fetch and Koa without a mounting router), e.g. `/api/keys`. Default none. */
  basePath?: string
  /** How `GET /openapi.json` describes the API: title, servers, the host's security schemes. */
  openapi?: ManagementDocumentOptions
}

const optionsSchema = z.object({
  authorize: z.custom<(request: unknown) => unknown>((value) => typeof value === 'function', 'must be a function'),
  can: z.optional(z.custom<ManagementPolicy>((value) => typeof value === 'function', 'must be a function')),
  adminRoles: z.optional(z.array(z.string().check(z.minLength(1)))),
  allowedOrigins: z.optional(z.array(z.string().check(z.regex(/^https?:\/\/[^/\s]+$/, 'must be an origin such as https://app.example.com, without a path')))),
  bodyLimit: z.optional(z.int().check(z.gte(1024), z.lte(10 * 1024 * 1024))),
  types: z.optional(z.array(z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'must be a key type label')))),
  scopes: z.optional(z.array(z.string().check(z.minLength(1), z.maxLength(128)))),
  expiryPresets: z.optional(z.array(z.union([z.number(), z.string()]))),
  basePath: z.optional(z.string().check(z.regex(/^(\/[^/?#\s]+)*\/?$/, 'must be a path such as /api/keys'))),
  openapi: z.optional(z.record(z.string(), z.unknown())),
})

const DEFAULT_PRESETS: readonly Duration[] = ['30d', '60d', '90d']

/** The router core of one configuration. */
export class ManagementRouterCore<R> {
  readonly basePath: string
  readonly #keys: KeyManager
  readonly #authorize: (request: R) => unknown
  readonly #routes: ManagementRoutes
  readonly #schemas: RequestSchemas
  readonly #bodyLimit: number
  readonly #origins: ReadonlySet<string> | null
  readonly #documentOptions: ManagementDocumentOptions
  #document: string | null = null

  constructor(keys: KeyManager, options: ManagementRouterOptions<R>) {
    const parsed = optionsSchema.safeParse(options)
    if (!parsed.success) throw new ConfigError(parsed.error.issues.map((issue) => ({ path: issue.path.map(String), message: issue.message })))
    const presets = (options.expiryPresets ?? DEFAULT_PRESETS).map((preset, index) => {
      const ms = parseDuration(preset)
      if (ms === undefined || ms <= 0) throw new ConfigError([{ path: ['expiryPresets', String(index)], message: "must be a duration such as '30d'" }])
      return { preset: String(preset), ms }
    })
    const maxMs = keys.options.expiry.maxMs
    const adminRoles = new Set(options.adminRoles ?? ['admin'])
    const isAdmin = (principal: Principal) => adminRoles.has(principal.role)
    this.#keys = keys
    this.#authorize = options.authorize
    this.#schemas = requestSchemas(keys.options)
    this.#bodyLimit = options.bodyLimit ?? 16_384
    this.#origins = options.allowedOrigins === undefined ? null : new Set(options.allowedOrigins)
    this.#documentOptions = options.openapi ?? {}
    this.basePath = (options.basePath ?? '').replace(/\/$/, '')
    this.#routes = new ManagementRoutes({
      keys,
      can: options.can ?? defaultPolicy(isAdmin),
      isAdmin,
      defaultPolicy: options.can === undefined,
      ceiling: new CeilingResolver(keys, isAdmin),
      types: options.types ?? [],
      scopeCatalog: options.scopes ?? null,
      expiryPresets: presets.filter(({ ms }) => maxMs === null || ms <= maxMs).map(({ preset }) => preset),
    })
  }

  /**
   * Answers one request; `null` when its path is outside `basePath` (the framework goes on). Rejects only with what the host's `authorize` or `can` threw, or an error
   * that is not keywarden's: the framework's error handling gets those.
   */
  async handle(request: RouterRequest, frameworkRequest: R): Promise<RouterResponse | null> {
    const segments = this.#segments(request.path)
    if (segments === 'outside') return null
    const match = segments === null ? null : matchRoute(request.method, segments)
    if (match === null) return NOT_FOUND
    if ('allow' in match) return problem(405, 'method_not_allowed', 'This method is not allowed here.', { headers: { Allow: match.allow.join(', ') } })
    const { route, id } = match
    if (route.operationId === 'getOpenApi') return this.#openapi()

    const parsedPrincipal = principalSchema.safeParse(await this.#authorize(frameworkRequest))
    if (!parsedPrincipal.success) {
      throw new ConfigError(parsedPrincipal.error.issues.map((issue) => ({ path: ['authorize()', ...issue.path.map(String)], message: issue.message })))
    }
    const principal = normalizePrincipal(parsedPrincipal.data)
    if (principal === null) return UNAUTHORIZED

    let rawBody: unknown = {}
    if (changesState(request.method)) {
      const crossSite = crossSiteProblem(request, this.#origins)
      if (crossSite !== null) return crossSite
      const read = await jsonBody(request, this.#bodyLimit)
      if ('problem' in read) return read.problem
      rawBody = read.value
    }
    const rawQuery = queryObject(request.query)
    if ('problem' in rawQuery) return rawQuery.problem
    const query = this.#schemas[route.query ?? 'emptyQuery'].safeParse(rawQuery.value)
    if (!query.success) return invalidInput(400, new ValidationError(toIssues(query.error, this.#schemas[route.query ?? 'emptyQuery'])))

    const readsIfMatch = route.headers?.includes('If-Match') === true
    const expectedVersion = readsIfMatch ? ifMatchVersion(request) : undefined
    if (expectedVersion === null) return BAD_IF_MATCH
    const idempotencyHeader = request.header('idempotency-key')
    if (idempotencyHeader !== undefined && !idempotencyKeySchema.safeParse(idempotencyHeader).success) {
      return invalid(400, [{ field: 'Idempotency-Key', message: 'must be 16-255 visible ASCII characters (a UUID or a random token)' }])
    }
    try {
      // The key first: whoever may not act on it gets its 404 or 403 before any validation answer.
      const key = id === null || route.action === undefined ? null : await this.#routes.keyFor(principal, id, route.action)
      if (key !== null && 'status' in key) return key
      // Checked here for every route that reads If-Match; the KeyManager checks again atomically where it can.
      if (key !== null && expectedVersion !== undefined && expectedVersion !== key.version) return VERSION_MISMATCH
      let body: Record<string, unknown> = {}
      if (route.body !== undefined) {
        const checked = this.#schemas[route.body].safeParse(rawBody)
        if (!checked.success) return invalidInput(422, new ValidationError(toIssues(checked.error, this.#schemas[route.body])))
        body = checked.data as Record<string, unknown>
      }
      return await this.#routes.handlers[route.operationId](
        Object.freeze({
          principal,
          id,
          key,
          query: query.data as Record<string, unknown>,
          body,
          expectedVersion,
          idempotencyKey: route.headers?.includes('Idempotency-Key') ? idempotencyHeader : undefined,
          requestId: requestIdOf(request),
        }),
      )
    } catch (error) {
      const answer = problemForError(error, route.body === undefined ? 400 : 422)
      if (answer === null) throw error
      return answer
    }
  }

  /** The OpenAPI document, built once. */
  document(): object {
    return JSON.parse(this.#openapi().body!) as object
  }

  #openapi(): RouterResponse {
    this.#document ??= JSON.stringify(managementDocument(this.#keys.options, this.#documentOptions))
    return { status: 200, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' }, body: this.#document }
  }

  /** The path's segments below the base path, decoded; `null` when they do not decode. */
  #segments(path: string): string[] | null | 'outside' {
    let rest = path
    if (this.basePath !== '') {
      if (rest !== this.basePath && !rest.startsWith(`${this.basePath}/`)) return 'outside'
      rest = rest.slice(this.basePath.length)
    }
    const trimmed = rest.replace(/^\/+|\/+$/g, '')
    if (trimmed === '') return []
    try {
      return trimmed.split('/').map((segment) => decodeURIComponent(segment))
    } catch {
      return null
    }
  }
}
