/**
 * Regressions found while building the soak run (soak/). Each case is one promise the soak asserts,
 * reduced to a deterministic in-process test with an injected clock.
 */
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../adapters/memory/index.js'
import { manualClock, setup } from './helpers.js'

describe('verify cache staleness bound', () => {
  it('a read that started before a revoke on another instance is kept at most ttl from the read start, not from its answer', async () => {
    // No channel: the documented bound is that another instance may accept a revoked key for at most `ttl`.
    const store = new MemoryStore()
    const time = manualClock()
    const reader = setup({ store, clock: time.clock, cache: { ttl: '10s' } }).keys
    const admin = setup({ store, clock: time.clock }).keys
    const { key, token } = await admin.create({ name: 'x', environment: 'live' })

    // The reader's store read sees the record before the revoke, but its answer arrives 900 ms later
    // (a slow network, a busy event loop, a queued command).
    const get = store.get.bind(store)
    let release: () => void = () => undefined
    store.get = async (id) => {
      const record = await get(id)
      await new Promise<void>((resolve) => (release = resolve))
      return record
    }
    const slow = reader.verify(token)
    await new Promise((resolve) => setImmediate(resolve))
    store.get = get

    time.advance(100)
    await admin.revoke(key.id)
    const revokedAt = time.now
    time.advance(800)
    release()
    expect((await slow).valid).toBe(true) // it read before the revoke: fine

    time.set(revokedAt + 10_000) // the bound: ttl after the revoke returned
    expect(await reader.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })
  })
})
