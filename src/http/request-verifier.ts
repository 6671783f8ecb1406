/**
 * The framework-agnostic request check behind every middleware: find the one credential in the
 * headers, work out what the request costs, verify it within a deadline, and build the response for
 * each kind of failure (and the rate-limit headers of a success).
 */
import * as z from 'zod/mini'
import { ConfigError, StoreError } from '../errors.js'
import type { KeyManager } from '../key-manager.js'
import type { Duration } from '../policy/duration.js'
import { SCOPE_PATTERN } from '../policy/scopes.js'
import type { LimitState } from '../limits/limit-state.js'
import type { ApiKey, VerifyFailureReason, VerifyOptions } from '../types.js'
import { PARSE_CONTEXT, timerDurationSchema, toIssues } from '../validation.js'
import { DeadlineExceeded, DeadlineQueue } from './deadline-queue.js'
import { findCredential, type CredentialSources, type RequestHeaders } from './credentials.js'
import {
  acceptedHeaders,
  buildLimitRejection,
  buildResponses,
  DEFAULT_MESSAGES,
  insufficientScopeFor,
  type ProblemCode,
  type RejectionResponse,
  type RejectionStatus,
  type ResponseSettings,
} from './responses.js'

/**
 * Why a request was rejected: a {@link VerifyFailureReason}, a problem with the headers, or a
 * failure to verify at all. Goes to `onReject` and logs, never to the caller. `invalid_cost`: the `cost`
 * function threw or returned something other than an integer >= 0 (answered 503, like any other
 * failure to check the key; `error` is a {@link ConfigError} whose `cause` is what the function threw).
 * `invalid_scopes`: the `scopes` function failed the same way (answered 403 `insufficient_scope`).
 * `wrong_key_type`: the key's type is not in `types` (403 `wrong_key_type`). `check_failed`: `check`
 * did not return `true` (403 `check_failed`; `error` set when it threw or returned a non-boolean).
 *
 * @example
 * ```ts
 * import { createRequestVerifier, type Rejection, type RejectReason } from 'keywarden'
 *
 * const onReject = (rejection: Rejection) => {
 *   const reason: RejectReason = rejection.reason
 *   if (reason === 'store_timeout' || reason === 'store_unavailable') console.error('key store down', rejection.error)
 * }
 * const check = createRequestVerifier(keys, { onReject })
 * ```
 */
export type RejectReason =
  | 'missing_credentials'
  | 'unsupported_scheme'
  | 'malformed_header'
  | 'ambiguous_credentials'
  | VerifyFailureReason
  | 'invalid_cost'
  | 'wrong_key_type'
  | 'check_failed'
  | 'invalid_scopes'
  | 'store_unavailable'
  | 'store_timeout'
  | 'internal_error'

/**
 * What `onReject` receives for every rejected request. Never holds the token or a header.
 *
 * @example
 * ```ts
 * import type { Rejection } from 'keywarden'
 * import { apiKeyAuth } from 'keywarden/express'
 *
 * app.use(
 *   apiKeyAuth(keys, {
 *     onReject: (rejection: Rejection) => console.info({ reason: rejection.reason, status: rejection.status, keyId: rejection.keyId }),
 *   }),
 * )
 * ```
 */
export interface Rejection {
  /** The exact reason, for logs and metrics. */
  readonly reason: RejectReason
  /** The status the caller got. */
  readonly status: RejectionStatus
  /** The `code` of the problem body the caller got. */
  readonly code: ProblemCode
  /** The key ID named by the token, when the token could be parsed. */
  readonly keyId: string | null
  /** For 503s: the error that made verification impossible (a {@link StoreError} as a rule). */
  readonly error?: unknown
  /** For 429s: the limits that refused the request (`['credits']` when the credits are spent). */
  readonly violated?: readonly string[]
}

// Method syntax makes the parameter bivariant, so a function written for Express's `Request` or Koa's
// `Context` fits where the middleware promises only node's `IncomingMessage` or the minimal context.
type CostFunction<Request> = { cost(request: Request): number }['cost']
type ScopesFunction<Request> = { scopes(request: Request): readonly string[] }['scopes']
type CheckFunction<Request> = { check(key: ApiKey, request: Request): boolean | Promise<boolean> }['check']

/**
 * Options shared by {@link createRequestVerifier} and the Express and Koa middlewares. Invalid options
 * throw a {@link ConfigError} when the verifier or middleware is built, never per request.
 *
 * @example
 * ```ts
 * import type { ApiKeyAuthOptions } from 'keywarden'
 * import { apiKeyAuth } from 'keywarden/express'
 *
 * const options: ApiKeyAuthOptions = { scopes: ['data:read'], environment: 'live', onReject: (r) => console.info(r) }
 * app.use(apiKeyAuth(keys, options))
 *
 * // An export costs 10 units of the key's rate limits and credits, everything else 1:
 * app.use('/exports', apiKeyAuth(keys, { cost: (req) => (req.method === 'POST' ? 10 : 1) }))
 * ```
 */
export interface ApiKeyAuthOptions<Request = unknown> {
  /**
   * Every one of these scopes must be granted (directly, by a role or by a group); otherwise 403
   * `insufficient_scope`. Or a function of the request returning them (Express passes `req`, Koa
   * `ctx`), e.g. by method. Checked before the request is charged. A function that throws or returns
   * something other than a list of scopes (a promise, say: it must answer synchronously) refuses the
   * request: 403 `insufficient_scope`, reason `invalid_scopes` (with the error) for `onReject`.
   *
   * @example
   * ```ts
   * import type { Request } from 'express'
   * import { apiKeyAuth } from 'keywarden/express'
   *
   * // One guard for a path that is read with GET and written with anything else:
   * const byMethod = apiKeyAuth(keys, { scopes: (req: Request) => (req.method === 'GET' ? ['data:read'] : ['data:write']) })
   * app.route('/data').get(byMethod, (req, res) => res.json([])).put(byMethod, (req, res) => res.sendStatus(204))
   * ```
   */
  scopes?: readonly string[] | ScopesFunction<Request>
  /**
   * The key's `type` must be one of these (a non-empty list); otherwise 403 `wrong_key_type`. A key
   * without a type never passes. Checked once the key is verified, so a refused request has been
   * charged to the key's limits like any other.
   *
   * @example
   * ```ts
   * import { apiKeyAuth } from 'keywarden/express'
   *
   * app.post('/ingest', apiKeyAuth(keys, { types: ['ingestion'] }), (req, res) => res.sendStatus(202))
   * ```
   */
  types?: readonly string[]
  /**
   * A check of your own on the verified key and the request (Express passes `req`, Koa `ctx`): only
   * `true` lets it through. `false` refuses it with 403 `check_failed`; so does a throw, a rejected
   * promise or any other value, whose {@link ConfigError} (with `cause`) goes to `onReject`. Never a
   * 500. Runs last, once the key is verified, `types` passed and the request was charged.
   *
   * @example
   * ```ts
   * import { apiKeyAuth } from 'keywarden/express'
   *
   * // Only requests for the key's own tenant:
   * app.get('/reports', apiKeyAuth(keys, { check: (key, req) => key.tenantId === req.headers['x-tenant-id'] }), (req, res) => res.json([]))
   * ```
   */
  check?: CheckFunction<Request>
  /** The key must belong to this environment; otherwise 401. */
  environment?: string
  /** Accepted `Authorization` schemes (case-insensitive). Default `['Bearer', 'Api-Key']`; `[]` ignores `Authorization`. */
  schemes?: readonly string[]
  /** A dedicated header carrying the bare token. Default `'X-API-Key'`; `false` for none. */
  header?: string | false
  /** The `realm` of `WWW-Authenticate` challenges. Default `'api'`. */
  realm?: string
  /** Replacement `detail` texts of the problem bodies, by code. */
  messages?: Partial<Record<ProblemCode, string>>
  /** `Retry-After` of 503 responses, in seconds. Default 5. */
  retryAfterSeconds?: number
  /** How long verification may take before the request is answered 503: 1 ms to about 24.8 days (a timer's limit). Default `'5s'`. */
  timeout?: Duration
  /** Called for every rejected request with the exact reason. Its errors are ignored. */
  onReject?: (rejection: Rejection) => void | Promise<void>
  /**
   * What the request weighs against the key's rate limits and credits: an integer >= 0 (0 checks
   * without spending), or a function of the request returning one: Express passes `req`, Koa `ctx`,
   * {@link createRequestVerifier} the verifier's second argument (else the headers). Default: the
   * KeyManager's default (1). A number is checked when the middleware is built; a function that throws
   * or returns anything else (a fraction, a negative number, a promise) gets the request answered 503
   * `service_unavailable` with reason `invalid_cost`: nothing of the failure reaches the caller.
   */
  cost?: number | CostFunction<Request>
  /** `false`: send no `RateLimit` / `RateLimit-Policy` fields (on 200s and on 429s). Default `true`. */
  rateLimitHeaders?: boolean
}

/**
 * A request that passed: the verified key, its effective scopes, where its limits stand and the
 * headers to add to the response (`RateLimit`, `RateLimit-Policy`; none when the key has no limits).
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { createRequestVerifier } from 'keywarden'
 *
 * const check = createRequestVerifier(keys)
 * createServer(async (req, res) => {
 *   const decision = await check(req.rawHeaders)
 *   if (decision.ok) res.writeHead(200, decision.headers).end(`hello ${decision.key.ownerId}, you may ${decision.scopes.join(', ')}`)
 *   else res.writeHead(decision.status, decision.headers).end(decision.body)
 * })
 * ```
 */
export interface AcceptedRequest {
  /** Discriminates it from a {@link RejectedRequest}. */
  readonly ok: true
  /** Always 200: go on with the request. */
  readonly status: 200
  /** The verified key. */
  readonly key: ApiKey
  /** Every scope the key holds: its own plus those of its roles and groups. */
  readonly scopes: readonly string[]
  /** The key's rate limits after this request, in policy order; empty when none apply. */
  readonly limits: readonly LimitState[]
  /** The credit balance after this request, when the key is charged credits; else `null`. */
  readonly credits: {
    /** Credits left after this request. */
    readonly remaining: number
  } | null
  /** Headers to add to the response: `RateLimit` and `RateLimit-Policy`, unless none apply or `rateLimitHeaders` is `false`. */
  readonly headers: Readonly<Record<string, string>>
}

/**
 * A request that did not pass, with the response to send (identical for every reason with the same code).
 *
 * @example
 * ```ts
 * import { createRequestVerifier } from 'keywarden'
 *
 * const check = createRequestVerifier(keys, { scopes: ['data:read'] })
 *
 * // A Fetch API handler (Next.js, Hono, Workers):
 * export async function GET(request: Request): Promise<Response> {
 *   const decision = await check(request.headers)
 *   if (!decision.ok) return new Response(decision.body, { status: decision.status, headers: decision.headers })
 *   return Response.json({ owner: decision.key.ownerId })
 * }
 * ```
 */
export interface RejectedRequest extends RejectionResponse {
  /** Discriminates it from an {@link AcceptedRequest}. */
  readonly ok: false
  /** The exact reason, for logs; never send it to the caller. */
  readonly reason: RejectReason
  /** The key ID named by the token, when the token could be parsed. */
  readonly keyId: string | null
}

/**
 * The decision about one request: narrow it with `ok`.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { createRequestVerifier, type RequestDecision } from 'keywarden'
 *
 * const check = createRequestVerifier(keys)
 * createServer(async (req, res) => {
 *   const decision: RequestDecision = await check(req.rawHeaders)
 *   if (!decision.ok) return res.writeHead(decision.status, decision.headers).end(decision.body)
 *   res.end(`hello ${decision.key.ownerId}`)
 * })
 * ```
 */
export type RequestDecision = AcceptedRequest | RejectedRequest

/**
 * Checks one request's headers. Never rejects: every failure is a {@link RejectedRequest}. Built by
 * {@link createRequestVerifier}. `request` is what a `cost` function receives (the headers when omitted).
 *
 * @example
 * ```ts
 * import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
 * import { createRequestVerifier, type RequestVerifier } from 'keywarden'
 *
 * // Guards a plain node handler; build one verifier per policy, once, at startup.
 * function guarded(check: RequestVerifier, handler: (req: IncomingMessage, res: ServerResponse) => void) {
 *   return async (req: IncomingMessage, res: ServerResponse) => {
 *     const decision = await check(req.rawHeaders)
 *     if (decision.ok) handler(req, res)
 *     else res.writeHead(decision.status, decision.headers).end(decision.body)
 *   }
 * }
 * createServer(guarded(createRequestVerifier(keys, { scopes: ['data:read'] }), (req, res) => res.end('ok')))
 * ```
 */
export type RequestVerifier<Request = RequestHeaders> = (headers: RequestHeaders, request?: Request) => Promise<RequestDecision>

const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const QUOTABLE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

function optionsSchema(keys: KeyManager) {
  return z
    .strictObject({
      scopes: z._default(
        z.union([
          z.array(z.string().check(z.regex(SCOPE_PATTERN, 'must be 1-128 printable ASCII characters without spaces, quotes or backslashes'))),
          z.custom<(request: unknown) => unknown>((value) => typeof value === 'function', 'must be a list of scopes or a function of the request'),
        ]),
        [],
      ),
      environment: z.optional(z.enum(keys.options.environments as [string, ...string[]])),
      schemes: z._default(z.array(z.string().check(z.regex(HTTP_TOKEN, 'must be an HTTP token such as Bearer'))), ['Bearer', 'Api-Key']),
      header: z._default(
        z.union([
          z
            .string()
            .check(
              z.regex(HTTP_TOKEN, 'must be an HTTP header name'),
              z.refine((name: string) => name.toLowerCase() !== 'authorization', 'must not be Authorization (use schemes)'),
            ),
          z.literal(false),
        ]),
        'X-API-Key',
      ),
      realm: z._default(z.string().check(z.maxLength(100), z.regex(QUOTABLE, 'must be printable ASCII without quotes or backslashes')), 'api'),
      messages: z._default(
        z.strictObject(
          Object.fromEntries(Object.keys(DEFAULT_MESSAGES).map((code) => [code, z.optional(z.string().check(z.minLength(1), z.maxLength(500)))])) as Record<
            ProblemCode,
            z.ZodMiniOptional<z.ZodMiniString<string>>
          >,
        ),
        {},
      ),
      retryAfterSeconds: z._default(z.number().check(z.int(), z.gte(0), z.lte(86_400)), 5),
      timeout: z._default(timerDurationSchema, 5_000),
      onReject: z.optional(z.custom<ApiKeyAuthOptions['onReject']>((value) => typeof value === 'function', 'must be a function')),
      cost: z.optional(
        z.union([
          z.number().check(z.int(), z.gte(0)),
          z.custom<(request: unknown) => unknown>((value) => typeof value === 'function', 'must be an integer >= 0 or a function returning one'),
        ]),
      ),
      rateLimitHeaders: z._default(z.boolean(), true),
      types: z.optional(z.array(z.string().check(z.minLength(1), z.maxLength(256))).check(z.minLength(1, 'must name at least one key type'))),
      check: z.optional(z.custom<(key: ApiKey, request: unknown) => unknown>((value) => typeof value === 'function', 'must be a function')),
    })
    .check(
      z.refine((options) => options.schemes.length > 0 || options.header !== false, {
        message: 'accept at least one Authorization scheme or a header',
        path: ['schemes'],
      }),
    )
}

function settleQuietly(value: unknown): void {
  try {
    if (typeof (value as { then?: unknown } | null)?.then === 'function') (value as Promise<unknown>).then(undefined, () => undefined)
  } catch {
    // A value whose `then` throws is just another bad value.
  }
}

/** Runs the host's scopes function; anything but a list of valid scopes becomes the error `onReject` sees. */
function scopesOf(scopes: (request: unknown) => unknown, request: unknown): readonly string[] | ConfigError {
  let value: unknown
  try {
    value = scopes(request)
  } catch (error) {
    return new ConfigError([{ path: ['scopes'], message: 'threw an error' }], { cause: error })
  }
  if (!Array.isArray(value) || !value.every((scope) => typeof scope === 'string' && SCOPE_PATTERN.test(scope))) {
    // An async scopes function would otherwise leave an unhandled rejection behind.
    settleQuietly(value)
    return new ConfigError([{ path: ['scopes'], message: 'returned something other than a list of scopes' }])
  }
  return value as string[]
}

/** Runs the host's check: `true`, `false`, or the error it failed with (which refuses too). */
async function checkOf(check: (key: ApiKey, request: unknown) => unknown, key: ApiKey, request: unknown): Promise<boolean | Error> {
  try {
    const passed = await check(key, request)
    return passed === true ? true : passed === false ? false : new ConfigError([{ path: ['check'], message: 'returned something other than a boolean' }])
  } catch (error) {
    return new ConfigError([{ path: ['check'], message: 'threw an error' }], { cause: error })
  }
}

/** Runs the host's cost function; a failure of any kind becomes the error `onReject` sees. */
function costOf(cost: (request: unknown) => unknown, request: unknown): number | ConfigError {
  let value: unknown
  try {
    value = cost(request)
  } catch (error) {
    return new ConfigError([{ path: ['cost'], message: 'threw an error' }], { cause: error })
  }
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value
  // An async cost function would otherwise leave an unhandled rejection behind.
  settleQuietly(value)
  // The value may come from the request (a header), so it stays out of the message.
  return new ConfigError([{ path: ['cost'], message: 'must return an integer >= 0' }])
}

function callQuietly(hook: ApiKeyAuthOptions['onReject'], rejection: Rejection): void {
  if (hook === undefined) return
  try {
    const returned = hook(rejection)
    if (returned instanceof Promise) returned.catch(() => undefined)
  } catch {
    // A logging hook must never change the response.
  }
}

/**
 * Builds the framework-agnostic request check: give it a request's headers, get back the decision the
 * Express and Koa middlewares act on (status, headers, body; or the verified key). Use it for Fastify,
 * Hono, plain `node:http` or serverless handlers. Options are validated here, once.
 *
 * | situation | status |
 * |---|---|
 * | no credentials, or an unsupported scheme | 401, challenge without `error` |
 * | broken header (a malformed Basic credential included), ambiguous credentials | 400, `error="invalid_request"` |
 * | any invalid token (malformed, unknown, wrong secret, expired, revoked, disabled, other environment) | 401, `error="invalid_token"`, identical bytes |
 * | valid key without the required scopes (or a failing `scopes` function) | 403, `error="insufficient_scope"`, `scope="..."` |
 * | a key whose type is not in `types` | 403 `wrong_key_type`, no challenge |
 * | `check` did not return `true` | 403 `check_failed`, no challenge |
 * | a rate limit is spent | 429, `Retry-After`, `RateLimit`, `RateLimit-Policy`, `code: 'rate_limited'` |
 * | the credits are spent | 429, `Retry-After` until the refill (if any), `code: 'usage_exceeded'` |
 * | the store fails or times out, or the `cost` function fails | 503, `Retry-After` |
 *
 * Accepted requests carry `RateLimit` and `RateLimit-Policy` in `headers` (unless `rateLimitHeaders: false`).
 * Times in them (`t`, `Retry-After`) are seconds from `keys.options.clock()`, rounded up.
 *
 * @throws {@link ConfigError} for invalid options.
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { createRequestVerifier } from 'keywarden'
 *
 * const check = createRequestVerifier(keys, { scopes: ['data:read'] })
 * createServer(async (req, res) => {
 *   const decision = await check(req.rawHeaders)
 *   if (!decision.ok) return res.writeHead(decision.status, decision.headers).end(decision.body)
 *   res.writeHead(200, decision.headers).end(`hello ${decision.key.ownerId}`)
 * }).listen(3000)
 *
 * // A Fetch API handler whose bulk route weighs 10: the cost function gets the verifier's second argument.
 * const weighed = createRequestVerifier<Request>(keys, { cost: (request) => (new URL(request.url).pathname.startsWith('/bulk') ? 10 : 1) })
 * export async function POST(request: Request): Promise<Response> {
 *   const decision = await weighed(request.headers, request)
 *   if (!decision.ok) return new Response(decision.body, { status: decision.status, headers: decision.headers })
 *   return Response.json({ owner: decision.key.ownerId }, { headers: decision.headers })
 * }
 * ```
 */
export function createRequestVerifier<Request = RequestHeaders>(keys: KeyManager, options: ApiKeyAuthOptions<Request> = {}): RequestVerifier<Request> {
  const schema = optionsSchema(keys)
  const parsed = schema.safeParse(options ?? {}, PARSE_CONTEXT)
  if (!parsed.success) throw new ConfigError(toIssues(parsed.error, schema))
  const { scopes: scopeOption, environment, schemes, header, realm, messages, retryAfterSeconds, timeout, onReject, cost, rateLimitHeaders, types, check } = parsed.data
  const scopes = typeof scopeOption === 'function' ? [] : scopeOption
  const scopesFunction = typeof scopeOption === 'function' ? scopeOption : null
  const deadlines = new DeadlineQueue(timeout)

  const sources: CredentialSources = {
    schemes: new Set(schemes.map((scheme) => scheme.toLowerCase())),
    header: header === false ? null : header.toLowerCase(),
  }
  const settings: ResponseSettings = {
    realm,
    // A 401 must carry a challenge (RFC 9110) even when only the dedicated header is accepted.
    challengeSchemes: schemes.length > 0 ? schemes : ['Api-Key'],
    requiredScopes: scopes,
    messages: { ...DEFAULT_MESSAGES, ...messages },
    retryAfterSeconds,
    rateLimitHeaders,
  }
  const responses = buildResponses(settings)
  const costFunction = typeof cost === 'function' ? cost : null
  // A fixed cost (or none) needs no object per request.
  const verifyOptions: VerifyOptions = Object.freeze({ scopes, environment, ...(typeof cost === 'number' ? { cost } : {}) })

  const reject = (response: RejectionResponse, reason: RejectReason, keyId: string | null, error?: unknown, violated?: readonly string[]): RejectedRequest => {
    callQuietly(onReject, {
      reason,
      status: response.status,
      code: response.code,
      keyId,
      ...(error === undefined ? {} : { error }),
      ...(violated === undefined ? {} : { violated }),
    })
    return { ok: false, ...response, reason, keyId }
  }

  return async function verifyRequest(headers: RequestHeaders, request?: Request): Promise<RequestDecision> {
    let found: ReturnType<typeof findCredential>
    try {
      found = findCredential(headers, sources)
    } catch {
      // A headers object that throws when read (a broken adapter) is a bad request, not a crash.
      return reject(responses.invalidRequest, 'malformed_header', null)
    }
    switch (found.kind) {
      case 'missing':
        return reject(responses.missing, 'missing_credentials', null)
      case 'unsupported_scheme':
        return reject(responses.missing, 'unsupported_scheme', null)
      case 'malformed_header':
        return reject(responses.invalidRequest, 'malformed_header', null)
      case 'ambiguous':
        return reject(responses.invalidRequest, 'ambiguous_credentials', null)
    }
    let options = verifyOptions
    const credential = found.token
    const keyIdOf = () => (typeof credential === 'string' ? (keys.parseToken(credential)?.keyId ?? null) : credential.keyId)
    const subject = request === undefined ? headers : request
    if (costFunction !== null) {
      // Only once there is a credential: a request that fails on its headers costs the host nothing.
      const weight = costOf(costFunction as (request: unknown) => unknown, subject)
      if (weight instanceof ConfigError) return reject(responses.unavailable, 'invalid_cost', keyIdOf(), weight)
      options = { ...options, cost: weight }
    }
    let insufficient = responses.insufficientScope
    if (scopesFunction !== null) {
      const required = scopesOf(scopesFunction, subject)
      if (required instanceof ConfigError) return reject(responses.insufficientScope, 'invalid_scopes', keyIdOf(), required)
      options = { ...options, scopes: required }
      insufficient = insufficientScopeFor(settings, required)
    }
    try {
      const result = await deadlines.limit(keys.verify(credential, options))
      if (result.valid) {
        const { key, scopes: granted, limits, credits } = result
        if (types !== undefined && (key.type === null || !types.includes(key.type))) return reject(responses.wrongKeyType, 'wrong_key_type', key.id)
        if (check !== undefined) {
          const passed = await checkOf(check, key, subject)
          if (passed !== true) return reject(responses.checkFailed, 'check_failed', key.id, passed === false ? undefined : passed)
        }
        return { ok: true, status: 200, key, scopes: granted, limits, credits, headers: acceptedHeaders(settings, limits, keys.options.clock()) }
      }
      if (result.reason === 'rate_limited' || result.reason === 'usage_exceeded') {
        const response = buildLimitRejection(settings, result, keys.options.clock())
        return reject(response, result.reason, result.keyId, undefined, result.reason === 'rate_limited' ? result.violated : ['credits'])
      }
      const response = result.reason === 'insufficient_scope' ? insufficient : responses.invalidToken
      return reject(response, result.reason, result.keyId)
    } catch (error) {
      const reason = error instanceof DeadlineExceeded ? 'store_timeout' : error instanceof StoreError ? 'store_unavailable' : 'internal_error'
      return reject(responses.unavailable, reason, keyIdOf(), error instanceof DeadlineExceeded ? undefined : error)
    }
  }
}
