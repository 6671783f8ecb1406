/**
 * The public keys GitHub signs secret scanning alerts with: given by the host, or fetched from GitHub's
 * meta API and cached, with the last good set kept when a refetch fails, and at most one refetch per
 * interval for an identifier the cache does not know (so unsigned junk cannot make us hammer GitHub).
 */
import type * as NodeCrypto from 'node:crypto'
import * as z from 'zod/mini'
import { PARSE_CONTEXT } from '../../validation.js'

/**
 * One public key of GitHub's secret scanning, in GitHub's own shape: what
 * `https://api.github.com/meta/public_keys/secret_scanning` lists under `public_keys`.
 *
 * @example
 * ```ts
 * import { secretScanningHandler, type GitHubPublicKey } from 'keywarden'
 *
 * declare const pinned: string // a PEM copied from GitHub's list, e.g. from your configuration
 * const publicKeys: GitHubPublicKey[] = [{ key_identifier: '90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a', key: pinned, is_current: true }]
 * const handler = secretScanningHandler(keys, { publicKeys })
 * ```
 */
export interface GitHubPublicKey {
  /** The identifier GitHub sends in `Github-Public-Key-Identifier` (a hex digest). */
  readonly key_identifier: string
  /** The ECDSA P-256 public key, as PEM (`-----BEGIN PUBLIC KEY-----` ...). */
  readonly key: string
  /** Whether GitHub signs with it now; informational: every listed key is accepted. */
  readonly is_current?: boolean
}

/**
 * The `fetch` the secret scanning handler fetches GitHub's public keys with: `globalThis.fetch` fits.
 *
 * @example
 * ```ts
 * import { secretScanningHandler, type FetchFunction } from 'keywarden'
 *
 * // Authenticated requests get a far higher rate limit from GitHub's API.
 * const withToken: FetchFunction = (url, init) => fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${process.env.GITHUB_TOKEN}` } })
 * const handler = secretScanningHandler(keys, { fetch: withToken })
 * ```
 */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>

/** An identifier as it may appear in a header: visible ASCII, not too long. */
export const KEY_IDENTIFIER = /^[\x21-\x7e]{1,256}$/

export const publicKeySchema = z.object({
  key_identifier: z.string().check(z.regex(KEY_IDENTIFIER, 'must be 1-256 visible ASCII characters')),
  key: z.string().check(z.minLength(1), z.maxLength(16_384)),
  is_current: z.optional(z.boolean()),
})

const listSchema = z.object({ public_keys: z.array(z.unknown()) })

/** Why the keys could not be fetched; carries the URL's host and the status, never a request body. */
export class PublicKeysUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PublicKeysUnavailable'
  }
}

/** A PEM as a key object, or `null` unless it is an ECDSA P-256 public key. */
export function ecPublicKey(crypto: typeof NodeCrypto, pem: string): NodeCrypto.KeyObject | null {
  try {
    const key = crypto.createPublicKey(pem)
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? key : null
  } catch {
    return null
  }
}

/** Settings of a fetched key source. */
export interface FetchedKeysSettings {
  readonly url: string
  readonly fetch: FetchFunction
  readonly cacheTtlMs: number
  readonly refetchIntervalMs: number
  readonly timeoutMs: number
  readonly clock: () => number
  readonly crypto: typeof NodeCrypto
  readonly onError: (error: unknown) => void
}

/** Where signatures are checked against: a fixed set, or one fetched and cached. */
export interface KeySource {
  /** The key with this identifier, or `null` when there is none. Throws {@link PublicKeysUnavailable} when no key set was ever loaded. */
  find(identifier: string): Promise<NodeCrypto.KeyObject | null>
}

/** The host's own keys: nothing to fetch. */
export class FixedKeys implements KeySource {
  constructor(private readonly keys: ReadonlyMap<string, NodeCrypto.KeyObject>) {}

  async find(identifier: string): Promise<NodeCrypto.KeyObject | null> {
    return this.keys.get(identifier) ?? null
  }
}

export class FetchedKeys implements KeySource {
  #keys: ReadonlyMap<string, NodeCrypto.KeyObject> | null = null
  #loadedAt = -Infinity
  #attemptedAt = -Infinity
  #loading: Promise<void> | null = null

  constructor(private readonly settings: FetchedKeysSettings) {}

  async find(identifier: string): Promise<NodeCrypto.KeyObject | null> {
    const { clock, cacheTtlMs } = this.settings
    if (this.#keys === null || clock() - this.#loadedAt >= cacheTtlMs) await this.#refresh()
    let key = this.#keys?.get(identifier)
    // GitHub may have started signing with a new key: look once more, at most once per interval.
    if (key === undefined && this.#keys !== null) {
      await this.#refresh()
      key = this.#keys.get(identifier)
    }
    if (this.#keys === null) throw new PublicKeysUnavailable('No secret scanning public keys could be fetched yet')
    return key ?? null
  }

  /** Fetches the keys unless a fetch is under way (then waits for it) or one was tried within the interval. */
  async #refresh(): Promise<void> {
    if (this.#loading !== null) return this.#loading
    const now = this.settings.clock()
    if (now - this.#attemptedAt < this.settings.refetchIntervalMs) return
    this.#attemptedAt = now
    this.#loading = this.#load()
      .then((keys) => {
        this.#keys = keys
        this.#loadedAt = this.settings.clock()
      })
      .catch((error: unknown) => {
        // The last good set (if any) stays in use: a GitHub outage must not stop the alerts it already signed.
        this.settings.onError(error)
      })
      .finally(() => {
        this.#loading = null
      })
    return this.#loading
  }

  async #load(): Promise<ReadonlyMap<string, NodeCrypto.KeyObject>> {
    const { url, fetch, timeoutMs, crypto } = this.settings
    const where = new URL(url).host
    let body: unknown
    try {
      const response = await fetch(url, {
        headers: { accept: 'application/vnd.github+json, application/json', 'user-agent': 'keywarden-secret-scanning' },
        signal: AbortSignal.timeout(timeoutMs),
      })
      if (!response.ok) {
        await response.body?.cancel().catch(() => undefined)
        throw new PublicKeysUnavailable(`Fetching the secret scanning public keys from ${where} failed with HTTP ${response.status}`)
      }
      body = await response.json()
    } catch (error) {
      if (error instanceof PublicKeysUnavailable) throw error
      throw new PublicKeysUnavailable(`Fetching the secret scanning public keys from ${where} failed`, { cause: error })
    }
    const list = listSchema.safeParse(body, PARSE_CONTEXT)
    if (!list.success) throw new PublicKeysUnavailable(`The secret scanning public keys from ${where} are not a { public_keys: [...] } object`)
    const keys = new Map<string, NodeCrypto.KeyObject>()
    for (const entry of list.data.public_keys) {
      const parsed = publicKeySchema.safeParse(entry, PARSE_CONTEXT)
      const key = parsed.success ? ecPublicKey(crypto, parsed.data.key) : null
      // A key of another kind, or a broken entry, is skipped: the others still verify.
      if (parsed.success && key !== null) keys.set(parsed.data.key_identifier, key)
    }
    if (keys.size === 0) throw new PublicKeysUnavailable(`The secret scanning public keys from ${where} hold no ECDSA P-256 key`)
    return keys
  }
}
