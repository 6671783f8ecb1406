/**
 * What the soak expects: a timeline per key of the states it went through, and from it the answers an
 * app instance may give for a token at a given time.
 *
 * A management call changes the store at some instant between the moment it was sent and the moment
 * it returned (`start`, `end`). An instance with the verify cache may keep seeing the previous state
 * for up to the revocation bound after `end` (cache ttl plus a margin; with a working invalidation
 * channel, milliseconds). So a request sent at `sent` and answered at `received` may have been decided
 * on any state that could be an instance's view at some instant of [sent, received]; time-based rules
 * (expiry, the end of a rotation's grace period) are evaluated at that instant, as verify does.
 */
import { REQUIRED_SCOPE } from './config.js'

/** The answers of GET /data that depend on the key: accepted, invalid credentials, missing scope. */
export type Outcome = 200 | 401 | 403

/** A key's state as far as verification is concerned. Secrets are numbered per key; tokens name theirs. */
export interface KeyState {
  readonly revoked: boolean
  readonly enabled: boolean
  readonly scopes: readonly string[]
  /** Epoch ms; valid while now < expiresAt. */
  readonly expiresAt: number | null
  readonly secret: number
  /** The secret replaced by the last rotation, accepted while now < previousUntil. */
  readonly previous: number | null
  readonly previousUntil: number | null
}

/** One state of a key's timeline: the store took it at an unknown instant of [start, end]. */
export interface Change {
  readonly op: string
  readonly start: number
  readonly end: number
  readonly state: KeyState
}

export class KeyModel {
  readonly changes: Change[]
  /** The key's updatedAt as last seen (epoch ms), to tell whether a failed call changed it. */
  updatedAt: number
  /** A management call on this key is running or waiting to be retried: no other is started. */
  busy = false
  /** Whether management traffic may touch it (the canary stays as it is). */
  managed = true
  /** The token of the current secret, when the soak knows it. */
  currentToken: TokenModel | null = null

  constructor(
    readonly id: string,
    first: Change,
    updatedAt: number,
  ) {
    this.changes = [first]
    this.updatedAt = updatedAt
  }

  get latest(): KeyState {
    return this.changes[this.changes.length - 1]!.state
  }

  /** The newest state the store may have had at `time` (the first one before it existed). */
  stateAt(time: number): KeyState {
    for (let i = this.changes.length - 1; i > 0; i--) if (this.changes[i]!.start <= time) return this.changes[i]!.state
    return this.changes[0]!.state
  }
}

/** `key`: a real token of a key; the others are always rejected (401), or 503 while the store is down. */
export type TokenKind = 'key' | 'garbage' | 'unknown-key' | 'wrong-secret'

export interface TokenModel {
  readonly index: number
  readonly token: string
  readonly kind: TokenKind
  readonly key: KeyModel | null
  readonly secret: number
}

/** What verify answers for `secret` on a key in `state` at `time` (the order of checks in KeyManager.verify). */
export function outcomeAt(state: KeyState, secret: number, time: number): Outcome {
  const current = secret === state.secret
  const inGrace = secret === state.previous && state.previousUntil !== null && time < state.previousUntil
  if (!current && !inGrace) return 401
  if (state.revoked || !state.enabled) return 401
  if (state.expiresAt !== null && time >= state.expiresAt) return 401
  return state.scopes.includes(REQUIRED_SCOPE) ? 200 : 403
}

/**
 * Every answer an instance may give for `token` to a request sent at `sent` and answered at `received`,
 * when an instance may see a state for up to `boundMs` after the call that replaced it returned.
 * Tokens of no key always get 401.
 */
export function possibleOutcomes(token: TokenModel, sent: number, received: number, boundMs: number): Set<Outcome> {
  const possible = new Set<Outcome>()
  if (token.key === null) return possible.add(401)
  const changes = token.key.changes
  for (let i = 0; i < changes.length; i++) {
    const from = changes[i]!.start
    const to = i + 1 < changes.length ? changes[i + 1]!.end + boundMs : Infinity
    const a = Math.max(sent, from)
    const b = Math.min(received, to)
    if (a > b) continue
    // Expiry and grace only ever turn an answer from accepted to rejected, so the ends of the span suffice.
    possible.add(outcomeAt(changes[i]!.state, token.secret, a))
    possible.add(outcomeAt(changes[i]!.state, token.secret, b))
  }
  return possible
}

/** Keys expiring within this are "expiring soon". */
const SOON_MS = 120_000

/** A human label for what `token` is at `time`, by the newest state the store may have had. */
export function labelAt(token: TokenModel, time: number, state: KeyState | null = token.key?.stateAt(time) ?? null): string {
  if (token.kind === 'garbage') return 'garbage'
  if (token.kind === 'unknown-key') return 'unknown key'
  if (token.kind === 'wrong-secret') return 'wrong secret'
  if (state === null) return 'garbage'
  const current = token.secret === state.secret
  const inGrace = token.secret === state.previous && state.previousUntil !== null && time < state.previousUntil
  if (!current && !inGrace) return 'rotated out'
  if (state.revoked) return 'revoked'
  if (!state.enabled) return 'disabled'
  if (state.expiresAt !== null && time >= state.expiresAt) return 'expired'
  if (inGrace) return 'in grace'
  if (state.expiresAt !== null && state.expiresAt - time < SOON_MS) return 'expiring soon'
  if (!state.scopes.includes(REQUIRED_SCOPE)) return 'no scope'
  return 'valid'
}

/** Labels in the order the report prints them. */
export const LABELS = ['valid', 'expiring soon', 'in grace', 'no scope', 'disabled', 'revoked', 'rotated out', 'expired', 'wrong secret', 'unknown key', 'garbage'] as const
