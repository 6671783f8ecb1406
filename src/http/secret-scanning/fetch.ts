/**
 * The Fetch API form of the secret scanning handler: `(request: Request) => Promise<Response>`, for
 * Next.js route handlers, Hono, Remix, Deno and Bun servers, or node through any Fetch adapter.
 */
import type { KeyManager } from '../../key-manager.js'
import { BodyReadError, SecretScanningCore, type ScanResponse, type SecretScanningOptions } from './core.js'

/**
 * The endpoint GitHub's secret scanning partner program sends leaked tokens to, as a Fetch API
 * handler. GitHub `POST`s a JSON array of `{ token, type, url, source }`, signed with ECDSA P-256
 * over the raw body (headers `Github-Public-Key-Identifier` and `Github-Public-Key-Signature`).
 * Once the signature checks out against GitHub's public keys (fetched from GitHub and cached, or
 * given as `publicKeys`), each token goes to {@link KeyManager.reportLeak}, `concurrency` at a time:
 * a genuine token's key is revoked (or disabled, with `action: 'disable'`) and a `leaked` event
 * tells you, so you can tell the owner. The answer is GitHub's: `[{ token_hash, token_type, label }]`
 * in the order of the input, `token_hash` the lowercase hex SHA-256 of the token, `label`
 * `true_positive` or `false_positive`.
 *
 * | situation | status |
 * |---|---|
 * | every token checked | 200 `application/json` |
 * | not `POST` | 405, `Allow: POST` |
 * | a signature missing, malformed, by an unknown key, or not over this body | 401 (one body for all); nothing is read or changed |
 * | body not JSON in UTF-8 | 400 |
 * | JSON, but not an array of `{ token, type, url?, source? }` with strings | 422 |
 * | body over `maxBodyBytes` (default 5 MiB) | 413 |
 * | the store fails, or no public keys could be fetched yet | 503, `Retry-After` (GitHub retries) |
 *
 * Error bodies are RFC 9457 problem details (`application/problem+json`). Nothing is logged, and no
 * answer, error or event holds a token. Never answers 500.
 *
 * Also exported as `createSecretScanningHandler`.
 *
 * @throws {@link ConfigError} at build time for invalid options.
 * @example
 * ```ts
 * import { secretScanningHandler } from 'keywarden'
 *
 * // app/github/secret-scanning/route.ts (Next.js): register https://<your host>/github/secret-scanning with GitHub.
 * export const POST = secretScanningHandler(keys)
 *
 * keys.on('leaked', (event) => console.warn(`key ${event.key.id} of ${event.key.ownerId} found at ${event.url}: ${event.action}`))
 * ```
 */
export function secretScanningHandler(keys: KeyManager, options: SecretScanningOptions = {}): (request: Request) => Promise<Response> {
  const core = new SecretScanningCore(keys, options)
  return async function secretScanning(request: Request): Promise<Response> {
    let answer: ScanResponse
    try {
      answer = await answerTo(core, request)
    } catch (error) {
      answer = core.failed(error)
    }
    return new Response(answer.body, { status: answer.status, headers: answer.headers })
  }
}

async function answerTo(core: SecretScanningCore, request: Request): Promise<ScanResponse> {
  const header = (name: string) => request.headers.get(name)
  const early = core.precheck(request.method, header)
  if (early !== null) return early
  if (request.bodyUsed) return core.rawBodyRequired
  const body = await readBody(request, core.maxBodyBytes)
  return body === null ? core.tooLarge : core.handle(body, header)
}

/** The body's bytes, or `null` once it passes `limit` (the rest is not read). */
async function readBody(request: Request, limit: number): Promise<Uint8Array | null> {
  if (request.body === null) return new Uint8Array(0)
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > limit) {
        await reader.cancel().catch(() => undefined)
        return null
      }
      chunks.push(value)
    }
  } catch (error) {
    throw new BodyReadError({ cause: error })
  }
  const body = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    body.set(chunk, offset)
    offset += chunk.byteLength
  }
  return body
}
