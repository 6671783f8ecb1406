import { describe, expect, it, vi } from 'vitest'
import { inspect } from 'node:util'
import { MemoryStore } from '../../adapters/memory/index.js'
import { StoreError, type IssuedKey, type KeyStore } from '../../src/index.js'
import { ALL_EVENTS, recordEvents, setup } from '../helpers.js'

/**
 * The leak canary: run every operation, collect every secret issued, then scan everything observable
 * (stored records, events, errors with stacks, console output, public records) for any of them.
 */
describe('no secret leaks', () => {
  it('keeps secrets out of storage, events, errors, logs and public records', async () => {
    const store = new MemoryStore()
    const logged: string[] = []
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((level) =>
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void logged.push(args.map((arg) => inspect(arg)).join(' '))),
    )
    const { keys, time } = setup({ store, maxKeysPerOwner: 3 })
    const events = recordEvents(keys, ALL_EVENTS)
    keys.on('verified', () => {
      throw new Error('listener failure is logged')
    })
    const secrets: string[] = []
    const hashes: string[] = []
    const errors: unknown[] = []
    const publicRecords: unknown[] = []
    const issue = (issued: IssuedKey) => {
      secrets.push(issued.token.split('_')[3]!.slice(0, 32))
      publicRecords.push(issued.key)
      return issued
    }

    const first = issue(await keys.create({ name: 'a', ownerId: 'u1', environment: 'live', scopes: ['data:read'], expiresIn: '1d' }))
    const second = issue(await keys.create({ name: 'b', ownerId: 'u1', environment: 'test', metadata: { note: 'n' } }))
    issue(await keys.create({ name: 'c', ownerId: 'u1', environment: 'live' }))
    errors.push(await keys.create({ name: 'd', ownerId: 'u1', environment: 'live' }).catch((e: unknown) => e))
    const rotated = issue(await keys.rotate(first.key.id, { gracePeriod: '1h' }))
    const latest = issue(await keys.rotate(first.key.id))
    for (const token of [latest.token, first.token, second.token, rotated.token]) {
      publicRecords.push(await keys.verify(token, { scopes: ['data:read'] }))
      publicRecords.push(await keys.verify(token.slice(0, -1) + 'X'))
    }
    await keys.disable(second.key.id)
    publicRecords.push(await keys.verify(second.token))
    errors.push(await keys.update(second.key.id, { name: '' }).catch((e: unknown) => e))
    errors.push(await keys.create({ name: second.token, environment: 'nope' } as never).catch((e: unknown) => e))
    errors.push(await keys.get(second.token.repeat(5)).catch((e: unknown) => e))
    await keys.revoke(second.key.id)
    time.advance(2 * 86_400_000)
    publicRecords.push(await keys.verify(first.token))
    publicRecords.push(await keys.list({ limit: 100 }))

    // A store never receives a secret, so a wrapped driver error (cause and all) cannot hold one.
    const failingStore: KeyStore = Object.assign(Object.create(store), {
      get: async (id: string) => {
        throw new Error(`driver exploded while reading ${id}`)
      },
      // Verify's read where the store has one: it fails the same way.
      getSync: (id: string) => {
        throw new Error(`driver exploded while reading ${id}`)
      },
    })
    const broken = setup({ store: failingStore }).keys
    const storeError = await broken.verify(first.token).catch((e: unknown) => e)
    expect(storeError).toBeInstanceOf(StoreError)

    for (const record of await store.list({ now: time.now, order: 'asc', limit: 1000 })) {
      hashes.push(record.hash, ...(record.previousHash ? [record.previousHash] : []))
    }
    spies.forEach((spy) => spy.mockRestore())

    expect(secrets).toHaveLength(5)
    expect(errors.every((error) => error instanceof Error)).toBe(true)
    const haystacks = {
      storage: JSON.stringify(await store.list({ now: time.now, order: 'asc', limit: 1000 })),
      events: JSON.stringify(events) + inspect(events, { depth: 10 }),
      errors: errors.map((error) => `${String(error)} ${(error as Error).stack} ${inspect(error, { depth: 10 })} ${JSON.stringify(error)}`).join('\n'),
      storeError: `${String(storeError)} ${JSON.stringify(storeError)} ${inspect(storeError, { depth: 10 })}`,
      logs: logged.join('\n'),
      publicRecords: JSON.stringify(publicRecords) + inspect(publicRecords, { depth: 10 }),
    }
    expect(logged.length).toBeGreaterThan(0)
    for (const [where, text] of Object.entries(haystacks)) {
      for (const secret of secrets) expect(text.includes(secret), `secret found in ${where}`).toBe(false)
      if (where !== 'storage') for (const hash of hashes) expect(text.includes(hash.slice(-64)), `hash found in ${where}`).toBe(false)
    }
  })
})
