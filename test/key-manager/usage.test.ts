import { afterEach, describe, expect, it, vi } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { StoreError } from '../../src/index.js'
import { countingStore, setup } from '../helpers.js'

afterEach(() => {
  vi.useRealTimers()
})

describe('write-behind lastUsedAt', () => {
  it('coalesces many uses of one key into one write with the latest time', async () => {
    const { store, calls } = countingStore()
    const { keys, time } = setup({ store, lastUsedPrecision: 1 })
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    for (let i = 0; i < 1000; i++) {
      time.advance(5)
      expect((await keys.verify(token)).valid).toBe(true)
    }
    expect(calls.touch ?? 0).toBe(0)
    await keys.flush()
    expect(calls.touch).toBe(1)
    expect((await store.get(key.id))!.lastUsedAt).toBe(time.now)
  })

  it('writes on the flush interval', async () => {
    vi.useFakeTimers()
    const store = new MemoryStore()
    const { keys } = setup({ store, usage: { flushInterval: '10s' } })
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    await keys.verify(token)
    expect((await store.get(key.id))!.lastUsedAt).toBeNull()
    await vi.advanceTimersByTimeAsync(10_000)
    expect((await store.get(key.id))!.lastUsedAt).not.toBeNull()
  })

  it('writes everything on close, and stops its timer', async () => {
    const store = new MemoryStore()
    const { keys } = setup({ store })
    const issued = await Promise.all(Array.from({ length: 20 }, (_, i) => keys.create({ name: `k${i}`, environment: 'live' })))
    for (const { token } of issued) await keys.verify(token)
    await keys.close()
    for (const { key } of issued) expect((await store.get(key.id))!.lastUsedAt).not.toBeNull()
  })

  it('holds at most maxPending keys and flushes when full', async () => {
    const { store, calls } = countingStore()
    const { keys } = setup({ store, usage: { maxPending: 3 } })
    const issued = await Promise.all(Array.from({ length: 10 }, (_, i) => keys.create({ name: `k${i}`, environment: 'live' })))
    for (const { token } of issued) await keys.verify(token)
    // Filling the buffer started flushes; nothing beyond the bound was ever held.
    await keys.flush()
    expect(calls.touch).toBeGreaterThanOrEqual(3)
    expect(calls.touch).toBeLessThanOrEqual(10)
    const used = (await keys.list({ limit: 100 })).items.filter((key) => key.lastUsedAt !== null)
    expect(used.length).toBe(calls.touch)
  })

  it('flush() during a flush under way also writes the uses buffered after that flush began', async () => {
    const store = new MemoryStore()
    const { keys, time } = setup({ store })
    const [a, b] = await Promise.all([0, 1].map((i) => keys.create({ name: `k${i}`, environment: 'live' })))
    await keys.verify(a!.token)
    // The first flush takes a's use, then waits inside the store's touch.
    const touch = store.touch.bind(store)
    let release: () => void = () => undefined
    store.touch = async (id, at) => {
      await new Promise<void>((resolve) => (release = resolve))
      return touch(id, at)
    }
    const first = keys.flush()
    time.advance(1000)
    await keys.verify(b!.token)
    store.touch = touch
    const second = keys.flush()
    release()
    await second
    expect((await store.get(b!.key.id))!.lastUsedAt).toBe(time.now)
    await first
    expect((await store.get(a!.key.id))!.lastUsedAt).toBe(time.now - 1000)
  })

  it('keeps the values of a failed write for the next flush and reports the failure', async () => {
    const store = new MemoryStore()
    const errors: unknown[] = []
    const { keys, time } = setup({ store, usage: { onError: (error) => void errors.push(error) } })
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    await keys.verify(token)
    const touch = store.touch.bind(store)
    store.touch = async () => {
      throw new Error('down')
    }
    await keys.flush()
    expect(errors).toHaveLength(1)
    expect((await keys.get(key.id))!.lastUsedAt).toEqual(new Date(time.now))
    store.touch = touch
    await keys.flush()
    expect((await store.get(key.id))!.lastUsedAt).toBe(time.now)
  })

  it('never delays or fails verify when the store cannot write', async () => {
    const store = new MemoryStore()
    store.touch = () => new Promise(() => undefined)
    const { keys } = setup({ store })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    expect((await keys.verify(token)).valid).toBe(true)
    void keys.flush()
    expect((await keys.verify(token)).valid).toBe(true)
  })

  it('rejects bad usage options at construction', () => {
    expect(() => setup({ usage: { maxPending: 0 } })).toThrow(/usage\.maxPending/)
    expect(() => setup({ usage: { flushInterval: 'soon' as never } })).toThrow(/usage\.flushInterval/)
  })
})

describe('usage.onError', () => {
  it('hears a StoreError for the failed touch, never the store\'s raw error', async () => {
    const inner = new MemoryStore()
    const raw = new Error('driver said: row kw1$hmac-sha256$default$' + 'ab'.repeat(32) + ' failed')
    const store = Object.assign(Object.create(inner) as MemoryStore, { touch: async () => { throw raw } })
    const heard: unknown[] = []
    const { keys } = setup({ store, usage: { onError: (error) => void heard.push(error) } })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    await keys.verify(token)
    await keys.flush()
    expect(heard).toHaveLength(1)
    expect(heard[0]).toBeInstanceOf(StoreError)
    expect(heard[0]).toMatchObject({ code: 'store_failed', operation: 'touch' })
    expect(heard[0]).not.toBe(raw)
    expect(JSON.stringify(heard[0])).not.toContain('kw1$')
    expect(String((heard[0] as Error).cause)).not.toContain('ab'.repeat(16))
  })
})
