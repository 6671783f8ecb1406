/**
 * Express middleware: `import { apiKeyAuth } from 'keywarden/express'`. Works with Express 4 and 5
 * (and anything built on node's `IncomingMessage` / `ServerResponse`).
 *
 * @packageDocumentation
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
    }
  }
}

/** The parts of an Express (or plain node) request the middleware reads and writes. */
export interface ApiKeyRequest extends IncomingMessage {
  apiKey?: ApiKey
}

/** An Express-style request handler. */
export type ApiKeyMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => Promise<void>

/** Writes a rejection with node's own API, so no framework helper can add or change a byte. */
export function sendRejection(res: ServerResponse, decision: RejectedRequest): void {
  res.statusCode = decision.status
  for (const [name, value] of Object.entries(decision.headers)) res.setHeader(name, value)
  res.setHeader('Content-Length', Buffer.byteLength(decision.body))
  res.end(decision.body)
}

/**
 * Guards a route with an API key. On success the verified key is `req.apiKey` and the request goes on;
 * otherwise the middleware answers (400, 401, 403 or 503, RFC 6750 challenge, RFC 9457 problem body)
 * and the request stops there. It never calls `next(error)` and never logs a header.
 *
 * @throws {@link ConfigError} at build time for invalid options.
 * @example
 * ```ts
 * import express from 'express'
 * import { apiKeyAuth } from 'keywarden/express'
 *
 * const app = express()
 * app.get('/reports', apiKeyAuth(keys, { scopes: ['data:read'], environment: 'live' }), (req, res) => {
 *   res.json({ owner: req.apiKey.ownerId })
 * })
 * ```
 */
export function apiKeyAuth(keys: KeyManager, options: ApiKeyAuthOptions = {}): ApiKeyMiddleware {
  const verifyRequest = createRequestVerifier(keys, options)
  return async function apiKeyAuthMiddleware(req, res, next) {
    const decision = await verifyRequest(req.rawHeaders ?? req.headers)
    if (!decision.ok) {
      sendRejection(res, decision)
      return
    }
    ;(req as ApiKeyRequest).apiKey = decision.key
    next()
  }
}

export type { ApiKeyAuthOptions, Rejection, RejectReason, RequestDecision } from './request-verifier.js'
