/**
 * The lifecycle events a KeyManager emits, their payloads, and the emitter that never lets a
 * listener's failure reach the operation that emitted.
 */
import type { Actor, AuditChanges } from './audit/audit-store.js'
import type { CreditTarget } from './limits/credit-targets.js'
import type { ApiKey, VerifyFailureReason } from './types.js'

/**
 * What every management event says about its change, as its audit entry records it.
 *
 * @example
 * ```ts
 * import type { ChangeDetails } from 'keywarden'
 *
 * const describe = (event: ChangeDetails) => `${event.actor?.id ?? 'someone'} changed ${Object.keys(event.changes).join(', ')}`
 * keys.on('updated', (event) => console.info(describe(event)))
 * ```
 */
export interface ChangeDetails {
  /** Who made the change; `null` when the call named no actor. */
  readonly actor: Actor | null
  /** Why; `null` when not given. */
  readonly reason: string | null
  /** The caller's request ID; `null` when not given. */
  readonly requestId: string | null
  /** The fields that really changed, `{ from, to }` (for `created`: every field set, from `null`). */
  readonly changes: AuditChanges
}

/**
 * Payloads of the lifecycle events, by event name. No payload ever carries a secret or a hash.
 * `type` repeats the event name, so one listener can tell payloads apart; `at` is the KeyManager
 * clock's time of the event.
 *
 * @example
 * ```ts
 * import type { KeyEventMap } from 'keywarden'
 *
 * declare const audit: { write(entry: object): void } // the application's audit log
 * keys.on('rotated', (event: KeyEventMap['rotated']) => {
 *   audit.write({ keyId: event.key.id, at: event.at, oldSecretUntil: event.previousSecretValidUntil })
 * })
 * ```
 */
export interface KeyEventMap {
  /**
   * A key's effective scopes may have changed: its scopes, roles or groups did. `before` and
   * `after` are the effective scopes (roles and groups resolved) either side of the change, so a
   * host can tell the users affected.
   */
  permissions_changed: ChangeDetails & {
    /** The event name. */
    readonly type: 'permissions_changed'
    /** When it happened. */
    readonly at: Date
    /** The key after the change. */
    readonly key: ApiKey
    /** Effective scopes before the change. */
    readonly before: readonly string[]
    /** Effective scopes after the change. */
    readonly after: readonly string[]
  }
  /** A key was created. */
  created: ChangeDetails & {
    /** The event name. */
    readonly type: 'created'
    /** When it happened. */
    readonly at: Date
    /** The new key. */
    readonly key: ApiKey
  }
  /** A key's name, description, type, grants, metadata or expiry changed. */
  updated: ChangeDetails & {
    /** The event name. */
    readonly type: 'updated'
    /** When it happened. */
    readonly at: Date
    /** The key after the change. */
    readonly key: ApiKey
    /**
     * The fields whose values really changed, e.g. `['scopes', 'expiresAt']` (a new expiry is listed as
     * `expiresAt`, however it was given); `changes` has their values before and after. An update that
     * changes nothing emits no event.
     */
    readonly fields: readonly string[]
  }
  /** A disabled key was enabled. */
  enabled: ChangeDetails & {
    /** The event name. */
    readonly type: 'enabled'
    /** When it happened. */
    readonly at: Date
    /** The key after the change. */
    readonly key: ApiKey
  }
  /** A key was disabled. */
  disabled: ChangeDetails & {
    /** The event name. */
    readonly type: 'disabled'
    /** When it happened. */
    readonly at: Date
    /** The key after the change. */
    readonly key: ApiKey
  }
  /** A key was revoked, for good. */
  revoked: ChangeDetails & {
    /** The event name. */
    readonly type: 'revoked'
    /** When it happened. */
    readonly at: Date
    /** The key after the change. */
    readonly key: ApiKey
  }
  /** A key was deleted. */
  deleted: ChangeDetails & {
    /** The event name. */
    readonly type: 'deleted'
    /** When it happened. */
    readonly at: Date
    /** The record as it was just before deletion. */
    readonly key: ApiKey
  }
  /** A key's secret was replaced. */
  rotated: ChangeDetails & {
    /** The event name. */
    readonly type: 'rotated'
    /** When it happened. */
    readonly at: Date
    /** The key after the change (its `start` shows the new secret). */
    readonly key: ApiKey
    /** The end of the grace period, or `null` when the old secret stopped at once. */
    readonly previousSecretValidUntil: Date | null
  }
  /**
   * A verify re-hashed a key's secret with the current pepper: it had matched a hash under an older
   * pepper or (while `acceptUnpepperedHashes` is on) an unpeppered one. Watch it during a pepper
   * rotation; an unexpected one means a row was written with another scheme.
   */
  rehashed: {
    /** The event name. */
    readonly type: 'rehashed'
    /** When it happened. */
    readonly at: Date
    /** The key after the re-hash. */
    readonly key: ApiKey
    /** The pepper ID the replaced hash named, or `null` for an unpeppered hash. */
    readonly fromPepperId: string | null
    /** The current pepper's ID, which the new hash names. */
    readonly toPepperId: string
    /** `true` when the re-hashed secret was the previous one, still in its rotation grace period. */
    readonly previousSecret: boolean
  }
  /** A token was accepted by {@link KeyManager.verify}. */
  verified: {
    /** The event name. */
    readonly type: 'verified'
    /** When it happened. */
    readonly at: Date
    /** The verified key. */
    readonly key: ApiKey
  }
  /** A token was not accepted by {@link KeyManager.verify}. */
  rejected: {
    /** The event name. */
    readonly type: 'rejected'
    /** When it happened. */
    readonly at: Date
    /** Why the token was not accepted. */
    readonly reason: VerifyFailureReason
    /** Set when the token could be parsed (it names a key, which may not exist); else `null`. */
    readonly keyId: string | null
  }
  /**
   * A credit balance changed: spent by a verify, or set or topped up by a management call. Carries
   * numbers only.
   */
  credits_changed: {
    /** The event name. */
    readonly type: 'credits_changed'
    /** When it happened. */
    readonly at: Date
    /** The balance that changed: a key's, or an owner's or tenant's shared pool. */
    readonly target: CreditTarget
    /** The key whose verify spent the credits, or whose balance a management call changed; `null` for pool calls. */
    readonly keyId: string | null
    /** The balance before the change (before any refill it triggered). */
    readonly previous: number
    /** The balance after the change. */
    readonly remaining: number
    /** `verify` (spent), `add` (addCredits) or `set` (setCredits). */
    readonly cause: 'verify' | 'add' | 'set'
    /** Who changed it (`add`/`set` with an actor); `null` otherwise. */
    readonly actor?: Actor | null
    /** Why; `null` when not given. */
    readonly reason?: string | null
  }
  /** Emitted by {@link KeyManager.notifyExpiring}, once per key and expiry date. */
  expiring: {
    /** The event name. */
    readonly type: 'expiring'
    /** When the owner was told. */
    readonly at: Date
    /** The key about to expire. */
    readonly key: ApiKey
    /** When it expires. */
    readonly expiresAt: Date
  }
  /**
   * {@link KeyManager.reportLeak} confirmed a reported token as genuine (a true positive): the key's
   * current secret, or its previous one still in its grace period. Emitted after the key was revoked
   * or disabled (after that change's own `revoked` or `disabled` event), and also when it already
   * was (`action: 'none'`), so every place a token turned up is heard of. Tell the owner from here.
   * Carries neither the token nor its secret or hash.
   */
  leaked: {
    /** The event name. */
    readonly type: 'leaked'
    /** When the report was handled. */
    readonly at: Date
    /** The key after the change (or as it was, for `action: 'none'`). */
    readonly key: ApiKey
    /** What this report did: `revoked`, `disabled`, or `none` when the key already was revoked (or disabled, for a disable). */
    readonly action: 'revoked' | 'disabled' | 'none'
    /** Where the token was found, as the report says (GitHub: `commit`, `pull_request`, `issue`, ...); `null` when not given. */
    readonly source: string | null
    /** The URL of the place the token was found, as the report gives it; `null` when not given. */
    readonly url: string | null
  }
}

/**
 * The name of a lifecycle event.
 *
 * @example
 * ```ts
 * import type { KeyEventName } from 'keywarden'
 *
 * declare const audit: { write(entry: object): void } // the application's audit log
 * const audited: KeyEventName[] = ['created', 'revoked', 'deleted', 'rotated']
 * for (const name of audited) keys.on(name, (event) => audit.write(event))
 * ```
 */
export type KeyEventName = keyof KeyEventMap

/**
 * Any lifecycle event payload; narrow it with `type`.
 *
 * @example
 * ```ts
 * import type { KeyEvent } from 'keywarden'
 *
 * function describe(event: KeyEvent): string {
 *   if (event.type === 'rejected') return `rejected: ${event.reason}`
 *   if (event.type === 'credits_changed') return `credits: ${event.previous} -> ${event.remaining}`
 *   return `${event.type}: ${event.key.id}`
 * }
 * ```
 */
export type KeyEvent = KeyEventMap[KeyEventName]

/**
 * A listener for one event; a returned promise is not awaited, but its rejection is reported to
 * `onListenerError`.
 *
 * @example
 * ```ts
 * import type { ApiKey, KeyEventListener } from 'keywarden'
 *
 * declare function notifyOwner(key: ApiKey): Promise<void> // e.g. sends an email
 * const onRevoked: KeyEventListener<'revoked'> = async (event) => notifyOwner(event.key)
 * keys.on('revoked', onRevoked)
 * ```
 */
export type KeyEventListener<E extends KeyEventName> = (event: KeyEventMap[E]) => void | Promise<void>

/**
 * A small typed emitter. Unlike node's EventEmitter it never throws into the emitting operation:
 * a listener that throws (or rejects) is reported to `onListenerError` and the others still run.
 */
export class KeyEventEmitter {
  private readonly listeners = new Map<KeyEventName, Set<KeyEventListener<KeyEventName>>>()

  constructor(private readonly onListenerError: (error: unknown, event: KeyEvent) => void) {}

  on<E extends KeyEventName>(name: E, listener: KeyEventListener<E>): () => void {
    let set = this.listeners.get(name)
    if (!set) this.listeners.set(name, (set = new Set()))
    set.add(listener as KeyEventListener<KeyEventName>)
    return () => this.off(name, listener)
  }

  off<E extends KeyEventName>(name: E, listener: KeyEventListener<E>): void {
    this.listeners.get(name)?.delete(listener as KeyEventListener<KeyEventName>)
  }

  /** Whether anyone listens, so that hot paths can skip building a payload. */
  has(name: KeyEventName): boolean {
    return (this.listeners.get(name)?.size ?? 0) > 0
  }

  /** Hands a failure met while preparing an event to the listener-error handler. */
  reportFailure(error: unknown, type: KeyEventName): void {
    this.onListenerError(error, { type } as KeyEvent)
  }

  emit<E extends KeyEventName>(event: KeyEventMap[E]): void {
    const set = this.listeners.get(event.type)
    if (!set) return
    for (const listener of [...set]) {
      try {
        const returned = listener(event)
        if (returned instanceof Promise) returned.catch((error: unknown) => this.onListenerError(error, event))
      } catch (error) {
        this.onListenerError(error, event)
      }
    }
  }
}
