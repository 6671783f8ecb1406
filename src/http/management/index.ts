/**
 * The management API: one router over a KeyManager, in Express, Koa, Fastify, Hono and Fetch forms.
 */
export { createManagementHandler, type ManagementHandler } from './fetch.js'
export type { ManagementDocumentOptions } from './openapi.js'
export type { Grantable, ManagementAction, ManagementPolicy, NewKeyTarget, Principal } from './principal.js'
export type { ManagementProblem, ManagementProblemCode } from './problems.js'
export type { ManagementRouterOptions } from './router-core.js'
