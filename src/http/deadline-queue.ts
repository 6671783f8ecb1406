/**
 * Time limits for many concurrent operations that share one duration, with one timer in all instead
 * of one `setTimeout` per operation (a per-request timer was the largest avoidable cost of the
 * middlewares). Deadlines are added in time order, so the queue is first-in first-out: settled
 * operations leave from the front, and the single timer always waits for the oldest one still open.
 */

/** What {@link DeadlineQueue.limit} rejects with when the time runs out first. */
export class DeadlineExceeded extends Error {
  constructor(ms: number) {
    super(`The operation took longer than ${ms} ms`)
    this.name = 'DeadlineExceeded'
  }
}

interface Entry {
  readonly deadline: number
  /** Rejects the caller's promise; `null` once the operation settled or timed out. */
  expire: ((error: DeadlineExceeded) => void) | null
}

/** Drop the consumed front of the array once it is this long (amortised O(1) removal). */
const COMPACT_AFTER = 1024

export class DeadlineQueue {
  private readonly entries: Entry[] = []
  private head = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  /** @param ms the time limit of every operation, in milliseconds (at least 1). */
  constructor(private readonly ms: number) {}

  /**
   * Settles like `operation`, or rejects with {@link DeadlineExceeded} if `operation` has not settled
   * within the limit. A late rejection of `operation` is absorbed.
   */
  limit<T>(operation: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: Entry = { deadline: Date.now() + this.ms, expire: reject }
      this.entries.push(entry)
      if (this.timer === undefined) this.arm(this.ms)
      operation.then(
        (value) => {
          if (entry.expire === null) return
          entry.expire = null
          this.dropSettled()
          resolve(value)
        },
        (error: unknown) => {
          if (entry.expire === null) return
          entry.expire = null
          this.dropSettled()
          reject(error)
        },
      )
    })
  }

  /** Operations still waiting (for tests and diagnostics). */
  get size(): number {
    let open = 0
    for (let i = this.head; i < this.entries.length; i++) if (this.entries[i]!.expire !== null) open++
    return open
  }

  private arm(delay: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(1, delay))
    // Never keeps the process alive on its own: the operations it limits do that if they must.
    this.timer.unref?.()
  }

  private expire(): void {
    this.timer = undefined
    const now = Date.now()
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head]!
      if (entry.expire !== null && entry.deadline > now) break
      if (entry.expire !== null) {
        const expire = entry.expire
        entry.expire = null
        expire(new DeadlineExceeded(this.ms))
      }
      this.head++
    }
    this.compact()
    const next = this.entries[this.head]
    if (next !== undefined) this.arm(next.deadline - now)
  }

  private dropSettled(): void {
    while (this.head < this.entries.length && this.entries[this.head]!.expire === null) this.head++
    // The timer stays armed even when nothing waits: clearing and re-arming it per request is the
    // very cost this class exists to avoid. When it fires on an empty queue, it simply stops.
    this.compact()
  }

  private compact(): void {
    if (this.head === this.entries.length) {
      this.entries.length = 0
      this.head = 0
    } else if (this.head >= COMPACT_AFTER) {
      this.entries.splice(0, this.head)
      this.head = 0
    }
  }
}
