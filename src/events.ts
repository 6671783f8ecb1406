import type { ApiKey, VerifyFailureReason } from './types.js'

/**
 * Payloads of the lifecycle events, by event name. No payload ever carries a secret or a hash.
 * `at` is the KeyManager clock's time of the event.
 */
export interface KeyEventMap {
  created: { readonly type: 'created'; readonly at: Date; readonly key: ApiKey }
  /** `changes` names the fields the update set. */
  updated: { readonly type: 'updated'; readonly at: Date; readonly key: ApiKey; readonly changes: readonly string[] }
  enabled: { readonly type: 'enabled'; readonly at: Date; readonly key: ApiKey }
  disabled: { readonly type: 'disabled'; readonly at: Date; readonly key: ApiKey }
  revoked: { readonly type: 'revoked'; readonly at: Date; readonly key: ApiKey }
  /** `key` is the record as it was just before deletion. */
  deleted: { readonly type: 'deleted'; readonly at: Date; readonly key: ApiKey }
  /** `previousSecretValidUntil` is the end of the grace period, or `null` when the old secret stopped at once. */
  rotated: {
    readonly type: 'rotated'
    readonly at: Date
    readonly key: ApiKey
    readonly previousSecretValidUntil: Date | null
  }
  verified: { readonly type: 'verified'; readonly at: Date; readonly key: ApiKey }
  /** `keyId` is set when the token could be parsed (it names a key, which may not exist). */
  rejected: {
    readonly type: 'rejected'
    readonly at: Date
    readonly reason: VerifyFailureReason
    readonly keyId: string | null
  }
  /** Emitted by {@link KeyManager.notifyExpiring}, once per key and expiry date. */
  expiring: { readonly type: 'expiring'; readonly at: Date; readonly key: ApiKey; readonly expiresAt: Date }
}

/** The name of a lifecycle event. */
export type KeyEventName = keyof KeyEventMap

/** Any lifecycle event payload. */
export type KeyEvent = KeyEventMap[KeyEventName]

/** A listener for one event; a returned promise is not awaited, but its rejection is reported. */
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
