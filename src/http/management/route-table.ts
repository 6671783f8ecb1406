/**
 * The management API's routes as data: method, path, what each reads and answers. The router core
 * dispatches by it and the OpenAPI document is written from it, so the two cannot disagree.
 */
import type { ManagementAction } from './principal.js'
import type { RequestSchemas } from './schemas.js'
import type { responseSchemas } from './schemas.js'

/** The operations of the management API. */
export type OperationId =
  | 'createKey'
  | 'listKeys'
  | 'getMeta'
  | 'listExpiringKeys'
  | 'getOpenApi'
  | 'getKey'
  | 'updateKey'
  | 'deleteKey'
  | 'enableKey'
  | 'disableKey'
  | 'revokeKey'
  | 'rotateKey'
  | 'getKeyPermissions'
  | 'getKeyAudit'
  | 'getKeyCredits'
  | 'changeKeyCredits'

export interface RouteSpec {
  readonly operationId: OperationId
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  /** OpenAPI path template below the mount point; `{id}` is the key ID. */
  readonly path: string
  readonly summary: string
  /** For `/{id}…` routes: what is done to the key, as the policy is asked. */
  readonly action?: ManagementAction
  readonly query?: keyof RequestSchemas
  readonly body?: keyof RequestSchemas
  /** Success status and the response schema (`null`: no body; `'document'`: the OpenAPI document). */
  readonly success: { readonly status: 200 | 201 | 204; readonly schema: keyof typeof responseSchemas | null | 'document' }
  /** Error statuses the route can answer with, besides the ones every route has. */
  readonly errors: readonly number[]
  /** Headers the route reads. */
  readonly headers?: readonly ('Idempotency-Key' | 'If-Match')[]
  /** Whether the answer carries an ETag (single-key answers). */
  readonly etag?: boolean
  /** Public: answered without asking `authorize`. */
  readonly public?: boolean
}

const CHANGE = [403, 404, 413, 415, 422] as const
const KEY_READ = [404] as const

export const ROUTES: readonly RouteSpec[] = [
  { operationId: 'createKey', method: 'POST', path: '/', summary: 'Create a key; the token is in this answer only', body: 'create', success: { status: 201, schema: 'issued' }, errors: [403, 409, 413, 415, 422], headers: ['Idempotency-Key'], etag: true },
  { operationId: 'listKeys', method: 'GET', path: '/', summary: 'List the keys the principal may see', query: 'listQuery', success: { status: 200, schema: 'page' }, errors: [] },
  { operationId: 'getMeta', method: 'GET', path: '/meta', summary: 'What the principal may do: environments, types, grantable permissions, expiry, quota', query: 'emptyQuery', success: { status: 200, schema: 'meta' }, errors: [] },
  { operationId: 'listExpiringKeys', method: 'GET', path: '/expiring', summary: 'Keys expiring within a window, for a banner', query: 'expiringQuery', success: { status: 200, schema: 'page' }, errors: [] },
  { operationId: 'getOpenApi', method: 'GET', path: '/openapi.json', summary: 'This document', success: { status: 200, schema: 'document' }, errors: [], public: true },
  { operationId: 'getKey', action: 'read', method: 'GET', path: '/{id}', summary: 'Read a key', query: 'emptyQuery', success: { status: 200, schema: 'key' }, errors: KEY_READ, etag: true },
  { operationId: 'updateKey', action: 'update', method: 'PATCH', path: '/{id}', summary: 'Update a key', body: 'update', success: { status: 200, schema: 'key' }, errors: [...CHANGE, 409, 412], headers: ['If-Match'], etag: true },
  { operationId: 'deleteKey', action: 'delete', method: 'DELETE', path: '/{id}', summary: 'Delete a key for good', success: { status: 204, schema: null }, errors: [403, 404, 412, 413, 415], headers: ['If-Match'] },
  { operationId: 'enableKey', action: 'enable', method: 'POST', path: '/{id}/enable', summary: 'Enable a key at once', body: 'change', success: { status: 200, schema: 'key' }, errors: [...CHANGE, 409, 412], headers: ['If-Match'], etag: true },
  { operationId: 'disableKey', action: 'disable', method: 'POST', path: '/{id}/disable', summary: 'Disable a key at once', body: 'change', success: { status: 200, schema: 'key' }, errors: [...CHANGE, 409, 412], headers: ['If-Match'], etag: true },
  { operationId: 'revokeKey', action: 'revoke', method: 'POST', path: '/{id}/revoke', summary: 'Revoke a key for good', body: 'change', success: { status: 200, schema: 'key' }, errors: [...CHANGE, 412], headers: ['If-Match'], etag: true },
  { operationId: 'rotateKey', action: 'rotate', method: 'POST', path: '/{id}/rotate', summary: 'Replace the secret; the old one works for the grace period', body: 'rotate', success: { status: 200, schema: 'rotated' }, errors: [...CHANGE, 409, 412], headers: ['Idempotency-Key', 'If-Match'], etag: true },
  { operationId: 'getKeyPermissions', action: 'read', method: 'GET', path: '/{id}/permissions', summary: 'Effective scopes and where each comes from', query: 'emptyQuery', success: { status: 200, schema: 'permissions' }, errors: KEY_READ },
  { operationId: 'getKeyAudit', action: 'read', method: 'GET', path: '/{id}/audit', summary: "The key's audit trail, newest first", query: 'auditQuery', success: { status: 200, schema: 'audit' }, errors: KEY_READ },
  { operationId: 'getKeyCredits', action: 'read_credits', method: 'GET', path: '/{id}/credits', summary: "The key's credit balance", query: 'emptyQuery', success: { status: 200, schema: 'credits' }, errors: [403, 404] },
  { operationId: 'changeKeyCredits', action: 'change_credits', method: 'POST', path: '/{id}/credits', summary: 'Top up (`add`) or set (`set`) the credit balance', body: 'credits', success: { status: 200, schema: 'credits' }, errors: CHANGE },
]

/** The route for a method and path (segments below the mount point), or why there is none. */
export function matchRoute(method: string, segments: readonly string[]): { route: RouteSpec; id: string | null } | { allow: readonly string[] } | null {
  const candidates = ROUTES.filter((route) => fits(route.path, segments))
  if (candidates.length === 0) return null
  const route = candidates.find((candidate) => candidate.method === method)
  if (route === undefined) return { allow: candidates.map((candidate) => candidate.method) }
  return { route, id: route.path.startsWith('/{id}') ? segments[0]! : null }
}

function fits(template: string, segments: readonly string[]): boolean {
  const parts = template === '/' ? [] : template.slice(1).split('/')
  if (parts.length !== segments.length) return false
  return parts.every((part, index) => (part === '{id}' ? !RESERVED.has(segments[0]!) : part === segments[index]))
}

/** First segments that are routes of their own, never key IDs. */
const RESERVED = new Set(['meta', 'expiring', 'openapi.json'])
