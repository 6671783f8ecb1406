/**
 * The Express (and plain `node:http`) form of the secret scanning handler: it reads the raw body
 * from the request stream itself, since the signature is over the exact bytes GitHub sent.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { KeyManager } from '../../key-manager.js'
import { SecretScanningCore, type ScanResponse, type SecretScanningOptions } from './core.js'
import { nodeHeader, rawBodyOf } from './node-body.js'

export type { SecretScanningOptions } from './core.js'
export type { GitHubPublicKey } from './public-keys.js'

/**
 * The request the Express form reads: node's `IncomingMessage`, plus the raw body a parser may have
 * kept. With Express, pass `req` as it is.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { secretScanningHandler, type SecretScanningRequest } from 'keywarden/express'
 *
 * // A body parser mounted before the handler must keep the raw bytes, or the signature cannot be checked:
 * app.use(express.json({ verify: (req, _res, buffer) => void ((req as SecretScanningRequest).rawBody = buffer) }))
 * app.post('/github/secret-scanning', secretScanningHandler(keys))
 * ```
 */
export interface SecretScanningRequest extends IncomingMessage {
  /** The raw body as a body parser kept it (e.g. from `express.json({ verify })`); used when it is a `Buffer`. */
  rawBody?: unknown
  /** The parsed body; used when it is a `Buffer` (`express.raw()`). */
  body?: unknown
}

/**
 * An Express-style handler, as returned by {@link secretScanningHandler}. It answers every request
 * itself (never calls `next`) and resolves once it has.
 *
 * @example
 * ```ts
 * import { secretScanningHandler, type SecretScanningMiddleware } from 'keywarden/express'
 *
 * const secretScanning: SecretScanningMiddleware = secretScanningHandler(keys, { action: 'disable' })
 * app.post('/github/secret-scanning', secretScanning)
 * ```
 */
export type SecretScanningMiddleware = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => Promise<void>

/**
 * The endpoint GitHub's secret scanning partner program sends leaked tokens to, for Express (4 and
 * 5) and plain `node:http`. It is the Fetch form's handler (see `secretScanningHandler` in
 * `keywarden`: the protocol, the statuses and the options) reading node's request stream.
 *
 * **Mount it before `express.json()`** (or any body parser): the signature is over the raw bytes,
 * which a parser consumes. It uses `req.rawBody` or `req.body` when a parser kept the raw bytes there
 * as a `Buffer` (`express.raw()`, `express.json({ verify })`); otherwise, if the body was already
 * read, it answers 400 saying that it needs the raw body. It never calls `next`, never throws and
 * never answers 500.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} at build time for invalid options.
 * @example
 * ```ts
 * import express from 'express'
 * import { secretScanningHandler } from 'keywarden/express'
 *
 * const app = express()
 * app.post('/github/secret-scanning', secretScanningHandler(keys)) // before express.json()
 * app.use(express.json())
 * keys.on('leaked', (event) => console.warn(`key ${event.key.id} found at ${event.url}: ${event.action}`))
 * ```
 */
export function secretScanningHandler(keys: KeyManager, options: SecretScanningOptions = {}): SecretScanningMiddleware {
  const core = new SecretScanningCore(keys, options)
  return async function secretScanningMiddleware(req, res) {
    let answer: ScanResponse
    try {
      answer = await answerTo(core, req as SecretScanningRequest)
    } catch (error) {
      answer = core.failed(error)
    }
    if (res.headersSent || res.writableEnded) return
    res.statusCode = answer.status
    for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value)
    res.setHeader('Content-Length', Buffer.byteLength(answer.body))
    res.end(answer.body)
  }
}

async function answerTo(core: SecretScanningCore, req: SecretScanningRequest): Promise<ScanResponse> {
  const header = nodeHeader(req)
  const early = core.precheck(req.method ?? '', header)
  if (early !== null) return early
  const body = await rawBodyOf(req, req, core.maxBodyBytes)
  if (body === 'too_large') return core.tooLarge
  if (body === 'consumed') return core.rawBodyRequired
  return core.handle(body, header)
}
