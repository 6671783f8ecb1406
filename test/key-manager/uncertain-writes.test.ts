/**
 * A management write that fails may still have landed: a timeout after the server applied it, or a
 * Redis write whose replication was not confirmed (ReplicationNotConfirmedError). The caller gets the
 * error, and the verification cache must not keep serving the copy from before the change.
 */
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { StoreError, type KeyStore } from '../../src/index.js'
import { setup } from '../helpers.js'

/** A store that applies updates and deletes, then reports them failed, as a write with an unconfirmed outcome. */
function landsThenFails(): KeyStore {
  const store = new MemoryStore()
  return Object.assign(Object.create(store) as KeyStore, {
    update: async (...args: Parameters<KeyStore['update']>) => {
      await store.update(...args)
      throw new StoreError('update')
    },
    delete: async (...args: Parameters<KeyStore['delete']>) => {
      await store.delete(...args)
      throw new StoreError('delete')
    },
  })
}

describe('a failed write that may have landed', () => {
  it('a revoke reported failed still drops the cached copy: verify reads the store and sees it revoked', async () => {
    const { keys } = setup({ store: landsThenFails(), cache: { ttl: '1h' } })
    const { key, token } = await keys.create({ name: 'k', environment: 'live' })
    expect((await keys.verify(token)).valid).toBe(true) // cached now
    await expect(keys.revoke(key.id)).rejects.toBeInstanceOf(StoreError)
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })
    await keys.close()
  })

  it('a delete reported failed still drops the cached copy', async () => {
    const { keys } = setup({ store: landsThenFails(), cache: { ttl: '1h' } })
    const { key, token } = await keys.create({ name: 'k', environment: 'live' })
    expect((await keys.verify(token)).valid).toBe(true)
    await expect(keys.delete(key.id)).rejects.toBeInstanceOf(StoreError)
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'unknown_key' })
    await keys.close()
  })
})
