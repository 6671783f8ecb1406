/**
 * Express middleware: `import { apiKeyAuth } from 'keywarden/express'`. Works with Express 4 and 5
 * (and anything built on node's `IncomingMessage` / `ServerResponse`). Importing it types
 * `req.apiKey` and `req.apiKeyScopes` on Express's `Request`.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { apiKeyAuth } from 'keywarden/express'
 *
 * const app = express()
 * app.use('/api', apiKeyAuth(keys, { environment: 'live' }))
 * app.get('/api/me', (req, res) => res.json({ key: req.apiKey.id }))
 * ```
 *
 * @module keywarden/express
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { KeyManager } from '../key-manager.js'
import type { ApiKey } from '../types.js'
import { createRequestVerifier, type ApiKeyAuthOptions, type RejectedRequest } from './request-verifier.js'

declare global {
  // Express merges this global interface into its Request type, so `req.apiKey` is typed for every
  // Express user as soon as this module is imported: no extra setup.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified API key; set by `apiKeyAuth` on the routes it guards. */
      apiKey: ApiKey
      /** The verified key's effective scopes (its own, its roles' and its groups'); set with `apiKey`. */
      apiKeyScopes: readonly string[]
    }
  }
}

/**
 * The parts of an Express (or plain node) request the middleware reads and writes. With Express, use
 * `req.apiKey` directly: importing this module adds it to Express's own `Request` type.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { apiKeyAuth, type ApiKeyRequest } from 'keywarden/express'
 *
 * const guard = apiKeyAuth(keys)
 * createServer((req, res) =>
 *   guard(req, res, () => res.end(`hello ${(req as ApiKeyRequest).apiKey?.ownerId}`)),
 * )
 * ```
 */
export interface ApiKeyRequest extends IncomingMessage {
  /** The verified key, set once the middleware accepted the request. */
  apiKey?: ApiKey
  /** The verified key's effective scopes (its own, its roles' and its groups'). */
  apiKeyScopes?: readonly string[]
}

/**
 * An Express-style request handler, as returned by {@link apiKeyAuth}. It resolves once it has either
 * answered the request or called `next()`; it never calls `next(error)`.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { apiKeyAuth, type ApiKeyMiddleware } from 'keywarden/express'
 *
 * const requireRead: ApiKeyMiddleware = apiKeyAuth(keys, { scopes: ['data:read'] })
 * const router = express.Router()
 * router.get('/reports', requireRead, (req, res) => {
 *   res.json({ owner: req.apiKey.ownerId })
 * })
 * ```
 */
export type ApiKeyMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => Promise<void>

/**
 * Writes a rejection with node's own API, so no framework helper can add or change a byte. The
 * middleware uses it; call it yourself when acting on a {@link RequestDecision} in plain node.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { createRequestVerifier } from 'keywarden'
 * import { sendRejection } from 'keywarden/express'
 *
 * const check = createRequestVerifier(keys)
 * createServer(async (req, res) => {
 *   const decision = await check(req.rawHeaders)
 *   if (!decision.ok) return sendRejection(res, decision)
 *   res.end('ok')
 * })
 * ```
 */
export function sendRejection(res: ServerResponse, decision: RejectedRequest): void {
  res.statusCode = decision.status
  for (const [name, value] of Object.entries(decision.headers)) res.setHeader(name, value)
  res.setHeader('Content-Length', Buffer.byteLength(decision.body))
  res.end(decision.body)
}

/**
 * Guards a route with an API key. On success the verified key is `req.apiKey`, its effective scopes
 * (its own, its roles' and its groups') `req.apiKeyScopes`, the key's `RateLimit`
 * and `RateLimit-Policy` fields are set on the response, and the request goes on; otherwise the
 * middleware answers (400, 401, 403, 429 or 503, RFC 6750 challenge, RFC 9457 problem body) and the
 * request stops there. It never calls `next(error)` and never logs a header. `cost`, `scopes` and
 * `check` functions get `req`.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} at build time for invalid options.
 * @example
 * ```ts
 * import express from 'express'
 * import { apiKeyAuth } from 'keywarden/express'
 *
 * const app = express()
 * app.get('/reports', apiKeyAuth(keys, { scopes: ['data:read'], environment: 'live' }), (req, res) => {
 *   res.json({ owner: req.apiKey.ownerId })
 * })
 * // A report export weighs what the client asks for, capped; a bad header falls back to 1.
 * app.post('/exports', apiKeyAuth(keys, { cost: (req: express.Request) => Math.min(100, Number.parseInt(req.get('x-pages') ?? '', 10) || 1) }), (req, res) => {
 *   res.status(202).json({ owner: req.apiKey.ownerId })
 * })
 * // Ingestion keys only, for their own tenant; also accepts `curl -u keyId:secret`:
 * const ingest = apiKeyAuth(keys, { types: ['ingestion'], schemes: ['Bearer', 'Basic'], check: (key, req: express.Request) => key.tenantId === req.params['tenant'] })
 * app.post('/tenants/:tenant/events', ingest, (req, res) => {
 *   res.status(202).json({ scopes: req.apiKeyScopes })
 * })
 * ```
 */
export function apiKeyAuth(keys: KeyManager, options: ApiKeyAuthOptions<IncomingMessage> = {}): ApiKeyMiddleware {
  const verifyRequest = createRequestVerifier<IncomingMessage>(keys, options)
  return async function apiKeyAuthMiddleware(req, res, next) {
    const decision = await verifyRequest(req.rawHeaders ?? req.headers, req)
    if (!decision.ok) {
      sendRejection(res, decision)
      return
    }
    // Before next(): the route may send the response at once.
    if (!res.headersSent) for (const [name, value] of Object.entries(decision.headers)) res.setHeader(name, value)
    ;(req as ApiKeyRequest).apiKey = decision.key
    ;(req as ApiKeyRequest).apiKeyScopes = decision.scopes
    next()
  }
}

export type { ApiKeyAuthOptions, Rejection, RejectReason, RequestDecision } from './request-verifier.js'
export { keyManagementRouter, type KeyManagementMiddleware } from './management/express.js'
export type { ManagementRouterOptions, Principal } from './management/index.js'
export { secretScanningHandler, type SecretScanningMiddleware, type SecretScanningRequest, type SecretScanningOptions, type GitHubPublicKey } from './secret-scanning/express.js'
