/**
 * Regression: an idempotent create racing deletes of its own key. With an idempotency key the key ID is
 * derived, so "ID taken" means "my key exists": create reads it to replay it. When a concurrent delete
 * lands between that insert and that read, and another retry re-creates the key before the next insert,
 * the loop goes round again. It used to give up after 3 rounds, the bound meant for random-ID
 * collisions, with a StoreError claiming "the store reported 3 fresh random key IDs as taken": a store
 * failure (HTTP 503 territory) for a store that worked, with a message about random IDs for a derived
 * one. Found by the mixed create/delete races of this suite on PostgreSQL and MariaDB. Now the derived
 * case is retried like a compare-and-set, and reported as a ConflictError if it never settles. The
 * race itself, on every backend, is in in-process.test.ts ('idempotent creates racing deletes').
 */
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { ConflictError, KeyManager, StoreError, type KeyStore, type StoredKey } from '../../src/index.js'
import { managerOptions } from './harness.js'

const INPUT = { name: 'deploy', idempotencyKey: 'b1c2d3e4-regression-create-vs-delete' }

/**
 * A real MemoryStore on which another instance deletes the key just before each of our reads and
 * re-creates it just before each of our inserts, `rounds` times: the interleaving of a create racing
 * deletes and other retries, made deterministic.
 */
function storeWithChurn(rounds: number) {
  const inner = new MemoryStore()
  let left = rounds
  let deleted: StoredKey | null = null
  const store: KeyStore = Object.assign(Object.create(inner) as KeyStore, {
    async insert(record: StoredKey, quota: Parameters<KeyStore['insert']>[1]) {
      if (deleted !== null) await inner.insert(deleted, null) // another retry re-created it
      deleted = null
      return inner.insert(record, quota)
    },
    async get(id: string) {
      const current = await inner.get(id)
      if (current !== null && left > 0) {
        left--
        deleted = current
        await inner.delete(id) // a delete landed between our insert and this read
      }
      return inner.get(id)
    },
  })
  return { store, inner }
}

describe('idempotent create racing deletes of its key', () => {
  it('replays the key after several rounds of delete and re-create, instead of failing as a store error', async () => {
    const { store } = storeWithChurn(4)
    const keys = new KeyManager(managerOptions(store))
    const first = await keys.create(INPUT)
    const again = await keys.create(INPUT)
    expect(again.token).toBe(first.token)
    expect(await keys.verify(again.token)).toMatchObject({ valid: true })
  })

  it('reports a churn that never settles as a ConflictError, not a StoreError', async () => {
    const { store } = storeWithChurn(Infinity)
    const keys = new KeyManager(managerOptions(store))
    await keys.create(INPUT)
    const error = await keys.create(INPUT).catch((caught: unknown) => caught)
    expect(error).not.toBeInstanceOf(StoreError)
    expect(error).toBeInstanceOf(ConflictError)
    expect(error).toMatchObject({ code: 'conflict' })
  })
})
