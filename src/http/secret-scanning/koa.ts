/**
 * The Koa form of the secret scanning handler: it reads the raw body from `ctx.req`, since the
 * signature is over the exact bytes GitHub sent.
 */
import type { IncomingMessage } from 'node:http'
import type { KeyManager } from '../../key-manager.js'
import { SecretScanningCore, type ScanResponse, type SecretScanningOptions } from './core.js'
import { nodeHeader, rawBodyOf } from './node-body.js'

export type { SecretScanningOptions } from './core.js'
export type { GitHubPublicKey } from './public-keys.js'

/**
 * The parts of a Koa context the secret scanning handler reads and writes, so that it fits any Koa
 * version's `Context` without depending on Koa's types.
 *
 * @example
 * ```ts
 * import type Koa from 'koa'
 * import { secretScanningHandler, type SecretScanningContext } from 'keywarden/koa'
 *
 * const handle = secretScanningHandler(keys)
 * const viaKoa = (ctx: Koa.Context, next: Koa.Next) => handle(ctx satisfies SecretScanningContext, next) // any Koa context fits
 * ```
 */
export interface SecretScanningContext {
  /** Node's request: its headers, method and body stream. */
  req: IncomingMessage
  /**
   * Koa's request, where a body parser may have kept the raw body: `rawBody` (a `Buffer`, or
   * koa-bodyparser's string, taken as UTF-8) or a `Buffer` as `body`.
   */
  request: object
  /** Set to the answer's status. */
  status: number
  /** Set to the answer's body (a JSON string). */
  body: unknown
  /** Sets the answer's headers. */
  set(headers: Record<string, string>): void
}

/**
 * A Koa middleware, as returned by {@link secretScanningHandler}. It answers every request itself:
 * `next()` is never called.
 *
 * @example
 * ```ts
 * import Router from '@koa/router'
 * import { secretScanningHandler, type SecretScanningKoaMiddleware } from 'keywarden/koa'
 *
 * const secretScanning: SecretScanningKoaMiddleware = secretScanningHandler(keys, { action: 'disable' })
 * const router = new Router()
 * router.post('/github/secret-scanning', secretScanning)
 * ```
 */
export type SecretScanningKoaMiddleware = (ctx: SecretScanningContext, next?: () => Promise<unknown>) => Promise<void>

/**
 * The endpoint GitHub's secret scanning partner program sends leaked tokens to, for Koa 2 and 3 and
 * `@koa/router`. It is the Fetch form's handler (see `secretScanningHandler` in `keywarden`: the
 * protocol, the statuses and the options) reading `ctx.req`.
 *
 * Mount it before any body parser, or make the parser keep the raw body (`ctx.request.rawBody`);
 * when the body was read and not kept, it answers 400 saying that it needs the raw body. Nothing is
 * thrown into Koa's error handling, and it never answers 500.
 *
 * @throws {@link keywarden!ConfigError | ConfigError} at build time for invalid options.
 * @example
 * ```ts
 * import Koa from 'koa'
 * import Router from '@koa/router'
 * import { secretScanningHandler } from 'keywarden/koa'
 *
 * const app = new Koa()
 * const router = new Router()
 * router.post('/github/secret-scanning', secretScanningHandler(keys))
 * app.use(router.routes())
 * keys.on('leaked', (event) => console.warn(`key ${event.key.id} found at ${event.url}: ${event.action}`))
 * ```
 */
export function secretScanningHandler(keys: KeyManager, options: SecretScanningOptions = {}): SecretScanningKoaMiddleware {
  const core = new SecretScanningCore(keys, options)
  return async function secretScanningMiddleware(ctx) {
    let answer: ScanResponse
    try {
      answer = await answerTo(core, ctx)
    } catch (error) {
      answer = core.failed(error)
    }
    ctx.status = answer.status
    // Headers first: Koa keeps an existing Content-Type when the body is assigned.
    ctx.set({ ...answer.headers })
    ctx.body = answer.body
  }
}

async function answerTo(core: SecretScanningCore, ctx: SecretScanningContext): Promise<ScanResponse> {
  const header = nodeHeader(ctx.req)
  const early = core.precheck(ctx.req.method ?? '', header)
  if (early !== null) return early
  const body = await rawBodyOf(ctx.req, (ctx.request ?? {}) as { rawBody?: unknown; body?: unknown }, core.maxBodyBytes)
  if (body === 'too_large') return core.tooLarge
  if (body === 'consumed') return core.rawBodyRequired
  return core.handle(body, header)
}
