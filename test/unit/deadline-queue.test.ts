import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DeadlineExceeded, DeadlineQueue } from '../../src/http/deadline-queue.js'

/** A promise settled from outside, like a store call that answers whenever the test says. */
function deferred<T>() {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)))
  return { promise, resolve, reject }
}

/** The outcome of `promise` so far, without waiting for it. */
function track<T>(promise: Promise<T>) {
  const state: { status: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { status: 'pending' }
  promise.then(
    (value) => Object.assign(state, { status: 'resolved', value }),
    (error: unknown) => Object.assign(state, { status: 'rejected', error }),
  )
  return state
}

describe('DeadlineQueue', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('passes a value or an error through when the operation is in time', async () => {
    const queue = new DeadlineQueue(100)
    await expect(queue.limit(Promise.resolve(7))).resolves.toBe(7)
    const failure = new Error('store down')
    await expect(queue.limit(Promise.reject(failure))).rejects.toBe(failure)
    expect(queue.size).toBe(0)
  })

  it('rejects with DeadlineExceeded at the limit, not before, and absorbs a late answer', async () => {
    const queue = new DeadlineQueue(100)
    const slow = deferred<number>()
    const outcome = track(queue.limit(slow.promise))
    await vi.advanceTimersByTimeAsync(99)
    expect(outcome.status).toBe('pending')
    await vi.advanceTimersByTimeAsync(1)
    expect(outcome.status).toBe('rejected')
    expect(outcome.error).toBeInstanceOf(DeadlineExceeded)
    expect((outcome.error as Error).message).toBe('The operation took longer than 100 ms')
    slow.reject(new Error('late')) // must not surface as an unhandled rejection
    slow.resolve(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(outcome.status).toBe('rejected')
    expect(queue.size).toBe(0)
  })

  it('expires only the operations that are late, each at its own deadline, with one timer', async () => {
    const queue = new DeadlineQueue(100)
    const first = deferred<string>()
    const second = deferred<string>()
    const third = deferred<string>()
    const a = track(queue.limit(first.promise))
    await vi.advanceTimersByTimeAsync(30)
    const b = track(queue.limit(second.promise))
    await vi.advanceTimersByTimeAsync(30)
    const c = track(queue.limit(third.promise))
    expect(vi.getTimerCount()).toBe(1)
    second.resolve('b') // settles out of order: the queue skips it later
    await vi.advanceTimersByTimeAsync(40) // t = 100: only the first is due
    expect([a.status, b.status, c.status]).toEqual(['rejected', 'resolved', 'pending'])
    expect(b.value).toBe('b')
    await vi.advanceTimersByTimeAsync(59) // t = 159
    expect(c.status).toBe('pending')
    await vi.advanceTimersByTimeAsync(1) // t = 160: the third one's deadline
    expect(c.status).toBe('rejected')
    expect(queue.size).toBe(0)
  })

  it('keeps one timer for any number of operations and none once it fired on an empty queue', async () => {
    const queue = new DeadlineQueue(100)
    for (let i = 0; i < 5000; i++) await queue.limit(Promise.resolve(i))
    expect(vi.getTimerCount()).toBe(1)
    await vi.advanceTimersByTimeAsync(100)
    expect(vi.getTimerCount()).toBe(0)
    // And it arms again for the next operation.
    const slow = deferred<number>()
    const outcome = track(queue.limit(slow.promise))
    expect(vi.getTimerCount()).toBe(1)
    await vi.advanceTimersByTimeAsync(100)
    expect(outcome.status).toBe('rejected')
  })

  it('counts only open operations while thousands settle behind a long-running one', async () => {
    const queue = new DeadlineQueue(1000)
    const stuck = deferred<number>()
    const outcome = track(queue.limit(stuck.promise))
    for (let i = 0; i < 3000; i++) await queue.limit(Promise.resolve(i))
    expect(queue.size).toBe(1)
    await vi.advanceTimersByTimeAsync(1000)
    expect(outcome.status).toBe('rejected')
    expect(queue.size).toBe(0)
  })
})
