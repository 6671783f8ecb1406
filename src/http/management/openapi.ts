/**
 * The OpenAPI 3.1 document of the management API, written from the route table and the very zod
 * schemas that validate requests (zod's JSON Schema output is JSON Schema 2020-12, OpenAPI 3.1's dialect).
 */
import * as z from 'zod/mini'
import type { ResolvedOptions } from '../../options.js'
import { problemSchema } from './problems.js'
import { ROUTES, type RouteSpec } from './route-table.js'
import { actorSchema, requestSchemas, responseSchemas } from './schemas.js'

/**
 * How the OpenAPI document describes the API.
 *
 * @example
 * ```ts
 * import type { ManagementDocumentOptions } from 'keywarden'
 *
 * const openapi: ManagementDocumentOptions = {
 *   title: 'Acme API keys',
 *   servers: [{ url: 'https://app.example.com/api/keys' }],
 *   securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: 'acme_session' } },
 * }
 * ```
 */
export interface ManagementDocumentOptions {
  /** `info.title`. Default `API keys`. */
  title?: string
  /** `info.version` of your API. Default `1`. */
  version?: string
  /** Where the router is mounted, e.g. `[{ url: '/api/keys' }]`. Default `[{ url: '/' }]`. */
  servers?: readonly {
    /** The URL the router's paths are relative to. */
    url: string
    /** What this server is. */
    description?: string
  }[]
  /**
   * The security schemes your own login uses (OpenAPI Security Scheme Objects); any one of them will do.
   * Default: a session cookie named `session`.
   */
  securitySchemes?: Readonly<Record<string, Readonly<Record<string, unknown>>>>
}

type Json = Record<string, unknown>

/** A zod schema as a plain JSON Schema, without `$schema`/`$id` (the document's dialect applies). */
function jsonSchema(schema: z.core.$ZodType, io: 'input' | 'output'): Json {
  const { $schema: _schema, $id: _id, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json
  return rest
}

const COMPONENT_NAMES: Readonly<Record<keyof typeof responseSchemas, string>> = {
  key: 'ApiKey',
  issued: 'IssuedKey',
  rotated: 'RotatedKey',
  page: 'KeyPage',
  meta: 'Meta',
  permissions: 'Permissions',
  audit: 'AuditPage',
  credits: 'Credits',
}

/** The response schemas as components, referring to each other (`ApiKey` inside `KeyPage`). */
function componentSchemas(): Json {
  const registry = z.registry<{ id: string }>()
  registry.add(actorSchema, { id: 'Actor' })
  registry.add(problemSchema, { id: 'Problem' })
  for (const [name, schema] of Object.entries(responseSchemas)) registry.add(schema, { id: COMPONENT_NAMES[name as keyof typeof responseSchemas] })
  const { schemas } = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, unrepresentable: 'any' }) as { schemas: Record<string, Json> }
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _schema, $id: _id, ...schema }]) => [id, schema]))
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'A query parameter or header is not valid (`field` names it).',
  401: 'No principal: sign in.',
  403: 'Not allowed: the policy, the grant ceiling (`grant_not_allowed`, `field`) or a cross-site request.',
  404: 'No such key, or one the principal may not see (the same answer).',
  409: 'Quota reached (`quota_exceeded`, `limit`), the key is revoked, or an idempotency key was reused.',
  412: "`If-Match` does not match the key's version.",
  413: 'The body is too large.',
  415: 'The body is not `application/json`.',
  422: 'The body is not valid (`field` names the first problem, `issues` all).',
  503: 'The key store is unavailable; retry after `Retry-After` seconds.',
}

function problemResponse(status: number): Json {
  return { description: STATUS_TEXT[status], content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } }
}

function parameters(route: RouteSpec, schemas: ReturnType<typeof requestSchemas>): Json[] {
  const out: Json[] = []
  if (route.path.includes('{id}')) out.push({ name: 'id', in: 'path', required: true, description: 'The key ID.', schema: { type: 'string' } })
  if (route.query !== undefined) {
    const query = jsonSchema(schemas[route.query], 'input') as { properties?: Record<string, Json>; required?: string[] }
    for (const [name, schema] of Object.entries(query.properties ?? {})) out.push({ name, in: 'query', required: query.required?.includes(name) ?? false, schema })
  }
  if (route.headers?.includes('Idempotency-Key')) {
    out.push({ name: 'Idempotency-Key', in: 'header', required: false, description: 'Retry safely: the same key and body answer with the same key and token for 24 hours.', schema: { type: 'string', minLength: 16, maxLength: 255 } })
  }
  if (route.headers?.includes('If-Match')) {
    out.push({ name: 'If-Match', in: 'header', required: false, description: 'The ETag (version) last read; a mismatch is 412 and changes nothing.', schema: { type: 'string' } })
  }
  return out
}

function operation(route: RouteSpec, schemas: ReturnType<typeof requestSchemas>): Json {
  const { status, schema } = route.success
  const success: Json = { description: route.summary }
  if (schema === 'document') success['content'] = { 'application/json': { schema: { type: 'object' } } }
  else if (schema !== null) success['content'] = { 'application/json': { schema: { $ref: `#/components/schemas/${COMPONENT_NAMES[schema]}` } } }
  if (route.etag === true) success['headers'] = { ETag: { description: "The key's version, for If-Match.", schema: { type: 'string' } } }
  const statuses = new Set<number>(route.errors)
  if (route.path.includes('{id}')) statuses.add(404)
  if (route.public !== true) for (const common of [400, 401, 503]) statuses.add(common)
  if (route.method !== 'GET') for (const change of [403, 413, 415]) statuses.add(change)
  const responses: Json = { [status]: success }
  for (const code of [...statuses].sort()) responses[code] = problemResponse(code)
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.public === true ? { security: [] } : {}),
    parameters: parameters(route, schemas),
    ...(route.body === undefined ? {} : { requestBody: { required: route.body === 'create' || route.body === 'update' || route.body === 'credits', content: { 'application/json': { schema: jsonSchema(schemas[route.body], 'input') } } } }),
    responses,
  }
}

/** The OpenAPI 3.1 document of a management router over a KeyManager with these options. */
export function managementDocument(options: ResolvedOptions, settings: ManagementDocumentOptions = {}): Json {
  const schemas = requestSchemas(options)
  const paths: Record<string, Json> = {}
  for (const route of ROUTES) (paths[route.path] ??= {})[route.method.toLowerCase()] = operation(route, schemas)
  const securitySchemes = settings.securitySchemes ?? {
    session: { type: 'apiKey', in: 'cookie', name: 'session', description: "The host application's own login; the router asks it who the principal is." },
  }
  return {
    openapi: '3.1.0',
    info: { title: settings.title ?? 'API keys', version: settings.version ?? '1', description: 'Manage API access keys: create, list, change, rotate and revoke them (keywarden management API).' },
    servers: settings.servers ?? [{ url: '/' }],
    security: Object.keys(securitySchemes).map((name) => ({ [name]: [] })),
    paths,
    components: { schemas: componentSchemas(), securitySchemes },
  }
}
