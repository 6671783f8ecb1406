import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { LocalInvalidationChannel, StoreError, type InvalidationChannel, type InvalidationSubscriptionEvents } from '../../src/index.js'
import { asyncReadStore, countingStore, forgeToken, manualClock, setup, withHeldRead } from '../helpers.js'

describe('verification cache', () => {
  it('is off by default: every verify reads the store', async () => {
    const { store, reads } = countingStore()
    const { keys } = setup({ store })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    await keys.verify(token)
    await keys.verify(token)
    expect(reads()).toBe(2)
  })

  it('serves repeated verifies from memory until the ttl passes', async () => {
    const { store, reads } = countingStore()
    const { keys, time } = setup({ store, cache: { ttl: '10s' } })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    for (let i = 0; i < 5; i++) expect((await keys.verify(token)).valid).toBe(true)
    expect(reads()).toBe(1)
    time.advance(9_999)
    await keys.verify(token)
    expect(reads()).toBe(1)
    time.advance(1)
    await keys.verify(token)
    expect(reads()).toBe(2)
  })

  it('caches unknown key IDs for negativeTtl', async () => {
    const { store, reads } = countingStore()
    const { keys, time } = setup({ store, cache: { negativeTtl: '1s' } })
    const unknown = forgeToken('0000000000000000')
    expect(await keys.verify(unknown)).toMatchObject({ reason: 'unknown_key' })
    expect(await keys.verify(unknown)).toMatchObject({ reason: 'unknown_key' })
    expect(reads()).toBe(1)
    time.advance(1_000)
    await keys.verify(unknown)
    expect(reads()).toBe(2)
  })

  it.each([
    ['get', () => asyncReadStore()],
    ['getSync', () => new MemoryStore()],
  ] as const)('never caches a store error (the read through %s fails)', async (read, makeStore) => {
    const store = makeStore()
    const { keys } = setup({ store, cache: {} })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    const working = store[read]
    Object.defineProperty(store, read, {
      value: () => {
        throw new Error('timeout')
      },
      configurable: true,
    })
    await expect(keys.verify(token)).rejects.toBeInstanceOf(StoreError)
    await expect(keys.verify(token)).rejects.toBeInstanceOf(StoreError)
    Object.defineProperty(store, read, { value: working, configurable: true })
    expect((await keys.verify(token)).valid).toBe(true)
  })

  it.each([
    ['disable', 'disabled'],
    ['revoke', 'revoked'],
    ['delete', 'unknown_key'],
    ['rotate', 'wrong_secret'],
    ['update', 'insufficient_scope'],
  ] as const)('sees %s at the very next verify', async (operation, reason) => {
    const { keys } = setup({ cache: { ttl: '1h' } })
    const { key, token } = await keys.create({ name: 'x', environment: 'live', scopes: ['data:read'] })
    expect((await keys.verify(token, { scopes: ['data:read'] })).valid).toBe(true)
    if (operation === 'update') await keys.update(key.id, { scopes: ['other'] })
    else await keys[operation](key.id)
    expect(await keys.verify(token, { scopes: ['data:read'] })).toMatchObject({ valid: false, reason })
  })

  it('sees enable and a new expiry at once', async () => {
    const { keys, time } = setup({ cache: { ttl: '1h', negativeTtl: '1h' } })
    const { key, token } = await keys.create({ name: 'x', environment: 'live', expiresIn: '1d' })
    await keys.disable(key.id)
    expect(await keys.verify(token)).toMatchObject({ reason: 'disabled' })
    await keys.enable(key.id)
    expect((await keys.verify(token)).valid).toBe(true)
    time.advance(86_400_000)
    expect(await keys.verify(token)).toMatchObject({ reason: 'expired' })
    await keys.update(key.id, { expiresIn: '1d' })
    expect((await keys.verify(token)).valid).toBe(true)
  })

  it('holds at most maxEntries keys', async () => {
    const { store, reads } = countingStore()
    const { keys } = setup({ store, cache: { maxEntries: 2 } })
    const [a, b, c] = await Promise.all([0, 1, 2].map((i) => keys.create({ name: `k${i}`, environment: 'live' })))
    for (const { token } of [a!, b!, c!]) await keys.verify(token)
    const before = reads()
    await keys.verify(c!.token)
    await keys.verify(b!.token)
    expect(reads()).toBe(before)
    await keys.verify(a!.token) // evicted as least recently used
    expect(reads()).toBe(before + 1)
  })

  it('does not keep a read that raced an invalidation', async () => {
    const store = asyncReadStore()
    const { keys } = setup({ store, cache: { ttl: '1h' } })
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    const slow = await withHeldRead(store, () => keys.verify(token)) // reads the enabled record, then waits
    await keys.disable(key.id)
    slow.release()
    expect((await slow.pending).valid).toBe(true) // it read before the change
    expect(await keys.verify(token)).toMatchObject({ reason: 'disabled' }) // but did not cache the old copy
  })
})

describe('cache invalidation across instances', () => {
  it('keeps a read that started before a revoke elsewhere at most ttl from the read start, not from its answer', async () => {
    // No channel: the documented bound is that another instance may accept a revoked key for at most `ttl`.
    const store = asyncReadStore()
    const time = manualClock()
    const reader = setup({ store, clock: time.clock, cache: { ttl: '10s' } }).keys
    const admin = setup({ store, clock: time.clock }).keys
    const { key, token } = await admin.create({ name: 'x', environment: 'live' })
    // The reader's read sees the record before the revoke, but its answer arrives 900 ms later.
    const slow = await withHeldRead(store, () => reader.verify(token))
    time.advance(100)
    await admin.revoke(key.id)
    const revokedAt = time.now
    time.advance(800)
    slow.release()
    expect((await slow.pending).valid).toBe(true) // it read before the revoke: fine
    time.set(revokedAt + 10_000) // the bound: ttl after the revoke returned
    expect(await reader.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })
  })

  function twoInstances(channel: InvalidationChannel | undefined, other: InvalidationChannel | undefined = channel) {
    const store = new MemoryStore()
    const time = manualClock()
    const a = setup({ store, clock: time.clock, cache: { ttl: '30s', channel } }).keys
    const b = setup({ store, clock: time.clock, cache: { ttl: '30s', channel: other } }).keys
    return { a, b, time }
  }

  it('a revoke on one instance takes effect on the other at once through the channel', async () => {
    const { a, b } = twoInstances(new LocalInvalidationChannel())
    const { key, token } = await a.create({ name: 'x', environment: 'live' })
    expect((await a.verify(token)).valid).toBe(true)
    expect((await b.verify(token)).valid).toBe(true)
    await b.revoke(key.id)
    expect(await a.verify(token)).toMatchObject({ reason: 'revoked' })
    await a.close()
    await b.close()
  })

  it('without a working channel, a change reaches the other instance within the ttl', async () => {
    const errors: unknown[] = []
    const broken: InvalidationChannel = {
      publish: async () => {
        throw new Error('channel down')
      },
      subscribe: async () => {
        throw new Error('channel down')
      },
    }
    const store = new MemoryStore()
    const time = manualClock()
    const a = setup({ store, clock: time.clock, cache: { ttl: '30s', channel: broken, onError: (e) => void errors.push(e) } }).keys
    const b = setup({ store, clock: time.clock, cache: { ttl: '30s', channel: broken, onError: (e) => void errors.push(e) } }).keys
    const { key, token } = await a.create({ name: 'x', environment: 'live' })
    expect((await a.verify(token)).valid).toBe(true)
    await b.disable(key.id)
    expect((await a.verify(token)).valid).toBe(true) // stale, within the bound
    time.advance(30_000)
    expect(await a.verify(token)).toMatchObject({ reason: 'disabled' })
    await new Promise((resolve) => setImmediate(resolve))
    expect(errors.length).toBeGreaterThan(0)
  })

  it('rejects a channel that is not one', () => {
    expect(() => setup({ cache: { channel: {} as never } })).toThrow(/cache\.channel/)
  })
})

describe('verification cache under a flood of forged key IDs (security review, finding 9)', () => {
  it('keeps the hot keys cached: unknown IDs never evict known ones', async () => {
    const { store, reads } = countingStore()
    const { keys } = setup({ store, cache: { maxEntries: 10, ttl: '1h', negativeTtl: '1h' } })
    const hot = await Promise.all(Array.from({ length: 10 }, (_, i) => keys.create({ name: `hot ${i}`, environment: 'live' })))
    for (const { token } of hot) expect((await keys.verify(token)).valid).toBe(true)
    const readsBefore = reads()
    for (let i = 0; i < 1000; i++) {
      const forged = forgeToken(`F${String(i).padStart(15, '0')}`)
      expect(await keys.verify(forged)).toMatchObject({ reason: 'unknown_key' })
    }
    const readsByFlood = reads() - readsBefore
    expect(readsByFlood).toBe(1000)
    for (const { token } of hot) expect((await keys.verify(token)).valid).toBe(true)
    expect(reads() - readsBefore - readsByFlood).toBe(0)
  })

  it('bounds unknown IDs by negativeMaxEntries, least recently seen dropped first', async () => {
    const { store, reads } = countingStore()
    const { keys } = setup({ store, cache: { negativeMaxEntries: 2, negativeTtl: '1h' } })
    const [a, b, c] = ['A', 'B', 'C'].map((letter) => forgeToken(letter.repeat(16)))
    await keys.verify(a!)
    await keys.verify(b!)
    await keys.verify(a!) // a is the most recent now
    await keys.verify(c!) // evicts b
    const before = reads()
    await keys.verify(a!)
    await keys.verify(c!)
    expect(reads()).toBe(before)
    await keys.verify(b!)
    expect(reads()).toBe(before + 1)
  })
})

/**
 * A real channel (LocalInvalidationChannel underneath) whose subscription can be lost and restored:
 * while lost, messages are dropped, as a broken connection drops them, and subscribers hear of it.
 */
class LossyChannel implements InvalidationChannel {
  readonly #inner = new LocalInvalidationChannel()
  readonly #events = new Set<InvalidationSubscriptionEvents | undefined>()
  #lost = false

  publish(keyId: string): Promise<void> {
    return this.#lost ? Promise.resolve() : this.#inner.publish(keyId)
  }

  async subscribe(listener: (keyId: string) => void, events?: InvalidationSubscriptionEvents): Promise<() => Promise<void>> {
    const stop = await this.#inner.subscribe(listener)
    this.#events.add(events)
    return async () => {
      this.#events.delete(events)
      await stop()
    }
  }

  lose(): void {
    this.#lost = true
    for (const events of this.#events) events?.onLost?.(new Error('connection reset'))
  }

  restore(): void {
    this.#lost = false
    for (const events of this.#events) events?.onRestored?.()
  }
}

describe('cache while the channel reports its subscription lost', () => {
  async function instances() {
    const store = new MemoryStore()
    const time = manualClock()
    const channel = new LossyChannel()
    const counted = countingStore(store)
    const reader = setup({ store: counted.store, clock: time.clock, cache: { ttl: '1h', negativeTtl: '1h', channel } }).keys
    const admin = setup({ store, clock: time.clock, cache: { ttl: '1h', channel } }).keys
    const { key, token } = await admin.create({ name: 'x', environment: 'live' })
    expect((await reader.verify(token)).valid).toBe(true)
    await new Promise((resolve) => setImmediate(resolve)) // the reader subscribes in the background
    return { reader, admin, channel, key, token, reads: counted.reads }
  }

  it('stops answering from the cache while lost, and a change made meanwhile is seen at once', async () => {
    const { reader, admin, channel, key, token, reads } = await instances()
    const before = reads()
    expect((await reader.verify(token)).valid).toBe(true)
    expect(reads(), 'cached while the channel is up').toBe(before)

    channel.lose()
    expect((await reader.verify(token)).valid).toBe(true)
    expect((await reader.verify(token)).valid).toBe(true)
    expect(reads(), 'every verify reads the store while lost').toBe(before + 2)
    // The revoke's message is dropped by the lost channel; the reader still sees it at once.
    await admin.revoke(key.id)
    expect(await reader.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })
    await reader.close()
    await admin.close()
  })

  it('caches again once restored, after dropping what it had (messages may have been missed)', async () => {
    const { reader, admin, channel, key, token, reads } = await instances()
    channel.lose()
    await admin.disable(key.id) // missed by the reader's subscription
    channel.restore()
    expect(await reader.verify(token)).toMatchObject({ valid: false, reason: 'disabled' })
    const after = reads()
    expect(await reader.verify(token)).toMatchObject({ valid: false, reason: 'disabled' })
    expect(reads(), 'served from the cache again').toBe(after)
    await admin.enable(key.id) // delivered: the channel is back
    expect((await reader.verify(token)).valid).toBe(true)
    await reader.close()
    await admin.close()
  })

  it('a channel without events behaves as before: the ttl bounds staleness', async () => {
    const store = new MemoryStore()
    const time = manualClock()
    const inner = new LocalInvalidationChannel()
    const plain: InvalidationChannel = { publish: (keyId) => inner.publish(keyId), subscribe: (listener) => inner.subscribe(listener) }
    const counted = countingStore(store)
    const reader = setup({ store: counted.store, clock: time.clock, cache: { ttl: '10s', channel: plain } }).keys
    const { token } = await setup({ store }).keys.create({ name: 'x', environment: 'live' })
    await reader.verify(token)
    await reader.verify(token)
    expect(counted.reads()).toBe(1)
    await reader.close()
  })
})
