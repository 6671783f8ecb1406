/**
 * Write-behind of `lastUsedAt`: verify records uses in memory; this buffer writes them in batches.
 */
import type { KeyStore } from './store.js'
import { asStoreError } from './store-failure.js'

/** Options of the write-behind usage buffer. */
export interface UsageBufferOptions {
  /** How often buffered `lastUsedAt` values are written. */
  readonly flushIntervalMs: number
  /** Most keys buffered at once; reaching it starts a flush, and uses of further keys wait for the next interval. */
  readonly maxPending: number
  /** Concurrent `touch` calls during a flush. */
  readonly concurrency: number
  /** Reports a flush that failed (always a {@link StoreError}); its entries are kept for the next one. */
  readonly onError: (error: unknown) => void
}

/**
 * Write-behind for `lastUsedAt`: verify records a use in memory (coalesced per key, latest wins) and
 * the buffer writes them on an interval, when full, and on {@link UsageBuffer.close}. A crash loses at
 * most one interval of last-used times; a failed flush keeps its entries for the next one.
 */
export class UsageBuffer {
  private pending = new Map<string, number>()
  private timer: ReturnType<typeof setInterval> | undefined
  private flushing: Promise<void> | undefined
  private closed = false

  constructor(
    private readonly store: KeyStore,
    private readonly options: UsageBufferOptions,
  ) {}

  /** Buffers a use of `keyId` at `at` (epoch ms). Never does I/O itself. */
  record(keyId: string, at: number): void {
    const previous = this.pending.get(keyId)
    if (previous === undefined) {
      if (this.pending.size >= this.options.maxPending) {
        // Bounded memory: this use is not buffered, and a flush makes room for the next ones.
        void this.flush()
        return
      }
      this.startTimer()
    }
    if (previous === undefined || at > previous) this.pending.set(keyId, at)
  }

  /** The buffered last use of `keyId`, if any, so reads can show it before it is written. */
  pendingFor(keyId: string): number | undefined {
    return this.pending.get(keyId)
  }

  /** Number of keys waiting to be written. */
  get size(): number {
    return this.pending.size
  }

  /** Writes everything buffered now. Concurrent calls share one flush. Never rejects. */
  flush(): Promise<void> {
    const running = this.flushing
    if (running === undefined) return this.startFlush()
    // The flush under way took its batch when it began: uses buffered since then need the next one.
    return running.then(() => this.flushing ?? this.startFlush())
  }

  /** Stops the timer and writes what is buffered. Further uses are still buffered but not scheduled. */
  async close(): Promise<void> {
    this.closed = true
    this.stopTimer()
    await this.flushing
    await this.flush()
  }

  private startFlush(): Promise<void> {
    const flushing = this.writePending().finally(() => (this.flushing = undefined))
    this.flushing = flushing
    return flushing
  }

  private async writePending(): Promise<void> {
    if (this.pending.size === 0) return
    const batch = [...this.pending]
    this.pending = new Map()
    let next = 0
    const failed: [string, number][] = []
    let lastError: unknown
    let stopped = false
    // The first failure stops the flush: a store that is down, or locked (a SQLite write blocks the
    // event loop for the whole busy timeout), is not tried once per pending key.
    const write = async (entry: [string, number]) => {
      try {
        await this.store.touch(entry[0], entry[1])
      } catch (error) {
        failed.push(entry)
        // A StoreError like every other store failure, so no driver detail (or stored value) reaches onError.
        lastError = asStoreError('touch', error)
        stopped = true
      }
    }
    const worker = async () => {
      while (next < batch.length && !stopped) await write(batch[next++]!)
    }
    // One write alone first, so a failing store sees one attempt rather than one per worker.
    await write(batch[next++]!)
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, batch.length - next) }, worker))
    // Entries never tried wait for the next flush with the failed ones.
    failed.push(...batch.slice(next))
    if (stopped) {
      // Keep them (newer uses win), within the bound, for the next flush.
      for (const [keyId, at] of failed) {
        if (this.pending.size >= this.options.maxPending && !this.pending.has(keyId)) break
        if (at > (this.pending.get(keyId) ?? -Infinity)) this.pending.set(keyId, at)
      }
      this.options.onError(lastError)
    }
    if (this.pending.size === 0) this.stopTimer()
  }

  private startTimer(): void {
    if (this.timer !== undefined || this.closed) return
    this.timer = setInterval(() => void this.flush(), this.options.flushIntervalMs)
    // A pending flush must not keep the host process alive; close() is the orderly way out.
    this.timer.unref?.()
  }

  private stopTimer(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }
}
