/**
 * What the adapters' invalidation channels share: one upstream subscription per channel object, fanned
 * out to every listener, and a bound on how long subscribing may take.
 */
import { parseTimerDuration, TIMER_DURATION_MESSAGE } from '../src/policy/duration.js'
import type { InvalidationSubscriptionEvents } from '../src/cache.js'
import type { ValidationIssue } from '../src/errors.js'

/** How an upstream subscription reports that it may be missing messages, and that it no longer is. */
export interface SubscriptionStatus {
  lost(cause?: unknown): void
  restored(): void
}

/**
 * Starts the upstream subscription, delivering each message and reporting its state; resolves with
 * the function that stops it.
 */
export type StartSubscription = (deliver: (message: string) => void, status: SubscriptionStatus) => Promise<() => Promise<void>>

/** How long subscribing may take by default before it fails (and the KeyManager tries again later). */
export const DEFAULT_SUBSCRIBE_TIMEOUT_MS = 5_000

/**
 * One upstream subscription shared by every listener of a channel object: the first `add` starts it,
 * the last unsubscribe stops it. Starts and stops take turns, so they never overlap.
 */
export class SharedSubscription {
  private readonly listeners = new Set<{ readonly listener: (keyId: string) => void; readonly events: InvalidationSubscriptionEvents | undefined }>()
  private stop: (() => Promise<void>) | undefined
  /** The upstream subscription said it may miss messages, and has not said it is back. */
  private lost: { readonly cause: unknown } | undefined
  private turn: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly start: StartSubscription,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Adds `listener`, starting the upstream subscription if it is the first; resolves once listening. */
  async add(listener: (keyId: string) => void, events?: InvalidationSubscriptionEvents): Promise<() => Promise<void>> {
    // An object per call: the same function subscribed twice is two subscriptions.
    const entry = { listener, events }
    await this.inTurn(async () => {
      if (this.stop === undefined) {
        this.lost = undefined
        this.stop = await this.start(this.deliver, this.status)
      }
      this.listeners.add(entry)
    })
    // A listener joining while the connection is down hears of it at once.
    if (this.lost !== undefined && this.listeners.has(entry)) this.tell(entry, 'onLost', this.lost.cause)
    let removed = false
    return async () => {
      if (removed) return
      removed = true
      await this.inTurn(async () => {
        this.listeners.delete(entry)
        const stop = this.stop
        if (this.listeners.size > 0 || stop === undefined) return
        this.stop = undefined
        this.lost = undefined
        await stop()
      })
    }
  }

  private readonly deliver = (message: string): void => {
    for (const { listener } of [...this.listeners]) {
      try {
        listener(message)
      } catch (error) {
        this.onError(error)
      }
    }
  }

  private readonly status: SubscriptionStatus = {
    lost: (cause) => {
      this.lost = { cause }
      for (const entry of [...this.listeners]) this.tell(entry, 'onLost', cause)
    },
    restored: () => {
      if (this.lost === undefined) return
      this.lost = undefined
      for (const entry of [...this.listeners]) this.tell(entry, 'onRestored')
    },
  }

  private tell(entry: { readonly events: InvalidationSubscriptionEvents | undefined }, event: 'onLost' | 'onRestored', cause?: unknown): void {
    try {
      if (event === 'onLost') entry.events?.onLost?.(cause)
      else entry.events?.onRestored?.()
    } catch (error) {
      this.onError(error)
    }
  }

  private inTurn(step: () => Promise<void>): Promise<void> {
    const next = this.turn.then(step)
    this.turn = next.catch(() => undefined)
    return next
  }
}

/**
 * `promise`, or a rejection once `ms` have passed. A value that arrives too late goes to `late`, so a
 * connection opened after the deadline can still be closed.
 */
export function within<T>(promise: Promise<T>, ms: number, what: string, late?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let expired = false
    const timer = setTimeout(() => {
      expired = true
      reject(new Error(`keywarden: ${what} did not complete within ${ms} ms`))
    }, ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        if (expired) late?.(value)
        else resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        if (!expired) reject(error)
      },
    )
  })
}

/** Validates the options every channel shares and adds their issues to `issues`. */
export function checkCommonOptions(
  options: { subscribeTimeout?: unknown; onError?: unknown },
  issues: ValidationIssue[],
): { subscribeTimeoutMs: number; onError: ((error: unknown) => void) | undefined } {
  let subscribeTimeoutMs = DEFAULT_SUBSCRIBE_TIMEOUT_MS
  if (options.subscribeTimeout !== undefined) {
    const ms = parseTimerDuration(options.subscribeTimeout)
    if (ms === undefined) issues.push({ path: ['subscribeTimeout'], message: TIMER_DURATION_MESSAGE })
    else subscribeTimeoutMs = ms
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') issues.push({ path: ['onError'], message: 'must be a function' })
  return { subscribeTimeoutMs, onError: options.onError as ((error: unknown) => void) | undefined }
}
