/**
 * The framework-neutral core of the GitHub secret scanning handler: method and size checks, the
 * signature over the raw body, the payload's shape, then one {@link KeyManager.reportLeak} per token
 * with bounded concurrency, answered in GitHub's format. The Fetch, Express and Koa forms only read
 * the raw body their own way and write the answer.
 */
import type * as NodeCrypto from 'node:crypto'
import * as z from 'zod/mini'
import { nodeCrypto } from '../../crypto/native.js'
import { problemAnswer } from '../problem-answer.js'
import { sha256Hex } from '../../crypto/hash.js'
import { ConfigError, formatPath } from '../../errors.js'
import type { KeyManager } from '../../key-manager.js'
import { MAX_LEAK_SOURCE_LENGTH, MAX_LEAK_URL_LENGTH, truncate } from '../../manager/leak-reports.js'
import type { Duration } from '../../policy/duration.js'
import { durationSchema, PARSE_CONTEXT, timerDurationSchema, toIssues } from '../../validation.js'
import { ecPublicKey, FetchedKeys, FixedKeys, KEY_IDENTIFIER, publicKeySchema, type FetchFunction, type GitHubPublicKey, type KeySource } from './public-keys.js'

/** GitHub's list of its secret scanning public keys. */
export const GITHUB_KEYS_URL = 'https://api.github.com/meta/public_keys/secret_scanning'

/** Default largest request body: 5 MiB, some 15,000 reported tokens of a typical size. */
export const DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024

/** The reporter named in the reason of every change the handler makes. */
const REPORTER = 'GitHub secret scanning'

/**
 * Options of `secretScanningHandler` (Fetch, Express and Koa forms alike). Invalid options throw a
 * {@link ConfigError} when the handler is built, never per request.
 *
 * @example
 * ```ts
 * import { secretScanningHandler, type SecretScanningOptions } from 'keywarden'
 *
 * const options: SecretScanningOptions = {
 *   action: 'disable',     // reversible: ask the owner before revoking
 *   cacheTtl: '6h',        // how long fetched public keys are trusted before a refetch
 *   onError: (error) => console.error('secret scanning', error),
 * }
 * export const POST = secretScanningHandler(keys, options)
 * ```
 */
export interface SecretScanningOptions {
  /**
   * GitHub's public keys, given by the host (GitHub's own shape): nothing is fetched. Without it the
   * keys are fetched from `keysUrl`. Each must be an ECDSA P-256 key in PEM, else a {@link ConfigError}.
   *
   * @example
   * ```ts
   * import { secretScanningHandler } from 'keywarden'
   *
   * declare const githubKeys: { public_keys: { key_identifier: string; key: string; is_current: boolean }[] } // saved from GitHub's list
   * const handler = secretScanningHandler(keys, { publicKeys: githubKeys.public_keys })
   * ```
   */
  publicKeys?: readonly GitHubPublicKey[]
  /**
   * Where the public keys are fetched from (JSON `{ public_keys: [{ key_identifier, key, is_current }] }`),
   * when `publicKeys` is not given. Default `https://api.github.com/meta/public_keys/secret_scanning`.
   *
   * @example
   * ```ts
   * import { secretScanningHandler } from 'keywarden'
   *
   * // GitHub Enterprise Server publishes its own list:
   * const handler = secretScanningHandler(keys, { keysUrl: 'https://github.example.com/api/v3/meta/public_keys/secret_scanning' })
   * ```
   */
  keysUrl?: string
  /**
   * The `fetch` the public keys are fetched with. Default `globalThis.fetch`. Pass one that adds an
   * `Authorization` header to lift GitHub's limit of 60 unauthenticated requests an hour.
   *
   * @example
   * ```ts
   * import { secretScanningHandler } from 'keywarden'
   *
   * const handler = secretScanningHandler(keys, {
   *   fetch: (url, init) => fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${process.env.GITHUB_TOKEN}` } }),
   * })
   * ```
   */
  fetch?: FetchFunction
  /**
   * How long fetched public keys are used before they are fetched again. Default `'1h'`. When a
   * refetch fails, the last good keys stay in use (and the failure goes to `onError`).
   *
   * @example
   * ```ts
   * import { secretScanningHandler } from 'keywarden'
   *
   * const handler = secretScanningHandler(keys, { cacheTtl: '24h' })
   * ```
   */
  cacheTtl?: Duration
  /**
   * The shortest time between two fetches of the public keys, whatever asks for them: a signature
   * naming an identifier not in the cache, a refetch after a failure. Default `'1m'`. An unknown
   * identifier is looked up again once, within this limit, before the request is answered 401.
   *
   * @example
   * ```ts
   * import { secretScanningHandler } from 'keywarden'
   *
   * const handler = secretScanningHandler(keys, { refetchInterval: '5m' })
   * ```
   */
  refetchInterval?: Duration
  /**
   * How long one fetch of the public keys may take. Default `'10s'`.
   *
   * @example
   * ```ts
   * import { secretScanningHandler } from 'keywarden'
   *
   * const handler = secretScanningHandler(keys, { keysTimeout: '3s' })
   * ```
   */
  keysTimeout?: Duration
  /**
   * What to do with the key of a genuine token: `'revoke'` (default), or `'disable'` (reversible).
   * See the caveat on automatic revocation in docs/security.md.
   *
   * @example
   * ```ts
   * import { secretScanningHandler } from 'keywarden'
   *
   * const handler = secretScanningHandler(keys, { action: 'disable' })
   * ```
   */
  action?: 'revoke' | 'disable'
  /**
   * The largest request body accepted, in bytes; a larger one is answered 413 without being read to
   * the end. Default 5 MiB (5,242,880), room for some 15,000 tokens of a typical size in one batch.
   *
   * @example
   * ```ts
   * import { secretScanningHandler } from 'keywarden'
   *
   * const handler = secretScanningHandler(keys, { maxBodyBytes: 20 * 1024 * 1024 })
   * ```
   */
  maxBodyBytes?: number
  /**
   * How many tokens of a batch are checked at the same time, 1 to 256. Default 16.
   *
   * @example
   * ```ts
   * import { secretScanningHandler } from 'keywarden'
   *
   * const handler = secretScanningHandler(keys, { concurrency: 4 }) // a small database pool
   * ```
   */
  concurrency?: number
  /**
   * Called with what made the handler answer 503 (a {@link StoreError}, public keys that cannot be
   * fetched) and with failed refetches of the public keys. Never holds a token. Its own errors are ignored.
   *
   * @example
   * ```ts
   * import { secretScanningHandler } from 'keywarden'
   *
   * declare const log: { error(message: string, error: unknown): void }
   * const handler = secretScanningHandler(keys, { onError: (error) => log.error('secret scanning', error) })
   * ```
   */
  onError?: (error: unknown) => void
}

/** What an adapter writes back: status, headers and body, as they are. */
export interface ScanResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** Reads one request header: `undefined` when absent, an array when the field came more than once. */
export type HeaderReader = (name: string) => string | readonly string[] | null | undefined

const optionsSchema = z
  .strictObject({
    publicKeys: z.optional(z.array(publicKeySchema).check(z.minLength(1, 'must hold at least one key'))),
    keysUrl: z.optional(
      z.string().check(
        z.refine((value: string) => {
          try {
            return ['https:', 'http:'].includes(new URL(value).protocol)
          } catch {
            return false
          }
        }, 'must be an http: or https: URL'),
      ),
    ),
    fetch: z.optional(z.custom<FetchFunction>((value) => typeof value === 'function', 'must be a function')),
    cacheTtl: z._default(durationSchema.check(z.refine((ms: number) => ms > 0, 'must be longer than 0')), 3_600_000),
    refetchInterval: z._default(durationSchema, 60_000),
    keysTimeout: z._default(timerDurationSchema, 10_000),
    action: z._default(z.enum(['revoke', 'disable']), 'revoke'),
    maxBodyBytes: z._default(z.number().check(z.int(), z.gte(1), z.lte(1024 * 1024 * 1024)), DEFAULT_MAX_BODY_BYTES),
    concurrency: z._default(z.number().check(z.int(), z.gte(1), z.lte(256)), 16),
    onError: z.optional(z.custom<(error: unknown) => void>((value) => typeof value === 'function', 'must be a function')),
  })
  .check(
    z.refine((options) => options.publicKeys === undefined || options.keysUrl === undefined, {
      message: 'give publicKeys or keysUrl, not both',
      path: ['keysUrl'],
    }),
  )

const itemsSchema = z.array(
  z.object({
    token: z.string(),
    type: z.string(),
    url: z.nullish(z.string()),
    source: z.nullish(z.string()),
  }),
)

/** The body of a 200: one entry per reported token, in GitHub's words. */
interface ScanResult {
  readonly token_hash: string
  readonly token_type: string
  readonly label: 'true_positive' | 'false_positive'
}

type ProblemCode =
  | 'invalid_signature'
  | 'method_not_allowed'
  | 'invalid_json'
  | 'invalid_payload'
  | 'payload_too_large'
  | 'raw_body_required'
  | 'invalid_request'
  | 'service_unavailable'

function problem(status: number, code: ProblemCode, detail: string, headers: Record<string, string> = {}): ScanResponse {
  return problemAnswer(status, code, detail, {}, headers)
}

const RESPONSES = {
  // One answer for every signature failure (missing, malformed, unknown key, wrong): it tells nothing.
  unauthorized: problem(401, 'invalid_signature', 'The request is not signed by a known GitHub secret scanning key.', {
    'WWW-Authenticate': 'Github-Public-Key-Signature realm="secret-scanning"',
  }),
  methodNotAllowed: problem(405, 'method_not_allowed', 'Secret scanning alerts are sent with POST.', { Allow: 'POST' }),
  invalidJson: problem(400, 'invalid_json', 'The body is not JSON in UTF-8.'),
  tooLarge: problem(413, 'payload_too_large', 'The body is larger than this endpoint accepts.', { Connection: 'close' }),
  rawBodyRequired: problem(
    400,
    'raw_body_required',
    'The raw request body is needed to check its signature, but a body parser already consumed it: mount the secret scanning handler before express.json() (or keep the raw body as req.rawBody).',
  ),
  unreadable: problem(400, 'invalid_request', 'The request body could not be read.'),
  unavailable: problem(503, 'service_unavailable', 'The reported tokens cannot be checked right now. Try again later.', { 'Retry-After': '5' }),
} as const

const JSON_HEADERS = Object.freeze({ 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })

/** Standard base64 with padding, no longer than any DER ECDSA signature needs. */
const BASE64 = /^[A-Za-z0-9+/]{4,256}={0,2}$/

/** Control characters and lone surrogates, which a reason may not hold: turned into spaces. */
const UNSTORABLE = /[\p{Cc}\p{Cs}]/gu

/** A failure to read the request body (the client went away, a broken stream): answered 400. */
export class BodyReadError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('The request body could not be read', options)
    this.name = 'BodyReadError'
  }
}

function single(value: string | readonly string[] | null | undefined): string | null {
  return typeof value === 'string' ? value : null
}

/** A report's `source` or `url` as reportLeak accepts it: no control characters, within its length. */
function clean(value: string | null | undefined, max: number): string | null {
  return value == null ? null : truncate(value.replace(UNSTORABLE, ' '), max)
}

export class SecretScanningCore {
  /** The largest body accepted, in bytes. */
  readonly maxBodyBytes: number
  readonly #keys: KeyManager
  readonly #crypto: typeof NodeCrypto
  readonly #source: KeySource
  readonly #action: 'revoke' | 'disable'
  readonly #concurrency: number
  readonly #onError: (error: unknown) => void

  constructor(keys: KeyManager, options: SecretScanningOptions) {
    const parsed = optionsSchema.safeParse(options ?? {}, PARSE_CONTEXT)
    if (!parsed.success) throw new ConfigError(toIssues(parsed.error, optionsSchema))
    const settings = parsed.data
    const crypto = nodeCrypto()
    if (crypto === undefined) throw new ConfigError([{ path: [], message: 'the secret scanning handler needs node:crypto (Node.js, Deno or Bun)' }])
    this.#crypto = crypto
    this.#keys = keys
    this.#action = settings.action
    this.#concurrency = settings.concurrency
    this.maxBodyBytes = settings.maxBodyBytes
    const hook = settings.onError
    this.#onError = (error) => {
      if (hook === undefined) return
      try {
        const returned = hook(error) as unknown
        if (returned instanceof Promise) returned.catch(() => undefined)
      } catch {
        // A logging hook must never change the answer.
      }
    }
    if (settings.publicKeys !== undefined) {
      const fixed = new Map<string, NodeCrypto.KeyObject>()
      settings.publicKeys.forEach((entry, index) => {
        const key = ecPublicKey(crypto, entry.key)
        if (key === null) throw new ConfigError([{ path: ['publicKeys', index, 'key'], message: 'must be an ECDSA P-256 public key in PEM' }])
        fixed.set(entry.key_identifier, key)
      })
      this.#source = new FixedKeys(fixed)
    } else {
      const fetch = settings.fetch ?? (globalThis.fetch as FetchFunction | undefined)
      if (fetch === undefined) throw new ConfigError([{ path: ['fetch'], message: 'is required where there is no global fetch' }])
      this.#source = new FetchedKeys({
        url: settings.keysUrl ?? GITHUB_KEYS_URL,
        fetch,
        cacheTtlMs: settings.cacheTtl,
        refetchIntervalMs: settings.refetchInterval,
        timeoutMs: settings.keysTimeout,
        clock: keys.options.clock,
        crypto,
        onError: this.#onError,
      })
    }
  }

  /** The answers that need no body: 405 for any method but POST, 413 for a declared length over the limit. */
  precheck(method: string, header: HeaderReader): ScanResponse | null {
    if (method.toUpperCase() !== 'POST') return RESPONSES.methodNotAllowed
    const length = single(header('content-length'))
    if (length !== null && /^\d+$/.test(length) && Number(length) > this.maxBodyBytes) return RESPONSES.tooLarge
    return null
  }

  /** 413: the body is over the limit. */
  get tooLarge(): ScanResponse {
    return RESPONSES.tooLarge
  }

  /** 400: a body parser consumed the body before the handler could read it. */
  get rawBodyRequired(): ScanResponse {
    return RESPONSES.rawBodyRequired
  }

  /** The answer to anything that went wrong outside {@link SecretScanningCore.handle}: never a 500. */
  failed(error: unknown): ScanResponse {
    if (error instanceof BodyReadError) return RESPONSES.unreadable
    this.#onError(error)
    return RESPONSES.unavailable
  }

  /** Checks the signature over the raw body, then reports every token. Never rejects. */
  async handle(body: Uint8Array, header: HeaderReader): Promise<ScanResponse> {
    try {
      if (!(await this.#signed(body, header))) return RESPONSES.unauthorized
    } catch (error) {
      // No key set could be loaded: not the sender's fault, and GitHub retries a 503.
      this.#onError(error)
      return RESPONSES.unavailable
    }
    let payload: unknown
    try {
      payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body))
    } catch {
      return RESPONSES.invalidJson
    }
    const items = itemsSchema.safeParse(payload, PARSE_CONTEXT)
    if (!items.success) {
      const issue = toIssues(items.error)[0]
      const where = issue === undefined ? '' : ` (${formatPath(issue.path) || 'body'}: ${issue.message})`
      return problem(422, 'invalid_payload', `The body must be a JSON array of { token, type, url, source } objects${where}.`)
    }
    try {
      const results = await this.#report(items.data)
      return { status: 200, headers: JSON_HEADERS, body: JSON.stringify(results) }
    } catch (error) {
      this.#onError(error)
      return RESPONSES.unavailable
    }
  }

  async #signed(body: Uint8Array, header: HeaderReader): Promise<boolean> {
    const identifier = single(header('github-public-key-identifier'))
    const signature = single(header('github-public-key-signature'))
    if (identifier === null || signature === null || !KEY_IDENTIFIER.test(identifier) || !BASE64.test(signature)) return false
    const key = await this.#source.find(identifier)
    if (key === null) return false
    try {
      return this.#crypto.verify('sha256', body, key, Buffer.from(signature, 'base64'))
    } catch {
      // A signature that is not DER, say.
      return false
    }
  }

  /**
   * One reportLeak per token, `concurrency` at a time, answers in input order. The first failure
   * stops new reports; those under way finish (a retry by GitHub finds their keys already handled).
   */
  async #report(items: readonly { token: string; type: string; url?: string | null | undefined; source?: string | null | undefined }[]): Promise<ScanResult[]> {
    const results: ScanResult[] = new Array<ScanResult>(items.length)
    const failures: unknown[] = []
    let next = 0
    const work = async () => {
      while (failures.length === 0 && next < items.length) {
        const item = items[next]!
        const index = next++
        try {
          const report = await this.#keys.reportLeak(item.token, {
            source: clean(item.source, MAX_LEAK_SOURCE_LENGTH),
            url: clean(item.url, MAX_LEAK_URL_LENGTH),
            action: this.#action,
            reporter: REPORTER,
          })
          results[index] = { token_hash: sha256Hex(item.token), token_type: item.type, label: report.label }
        } catch (error) {
          failures.push(error)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, items.length) }, work))
    if (failures.length > 0) throw failures[0]
    return results
  }

}
