/**
 * List cursors are bound to the query they came from (security review, finding 12): a forged cursor,
 * or one from other filters, another tenant or another order, is a ValidationError naming `cursor`.
 */
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { ValidationError, type KeyManager } from '../../src/index.js'
import { rejectionOf, setup } from '../helpers.js'

async function seeded(keys: KeyManager, tenantId: string, ownerId: string, count: number) {
  for (let i = 0; i < count; i++) await keys.create({ name: `k${i}`, environment: 'live', tenantId, ownerId })
}

async function cursorOf(keys: KeyManager, filters: Parameters<KeyManager['list']>[0]): Promise<string> {
  const { nextCursor } = await keys.list({ ...filters, limit: 1 })
  expect(nextCursor).not.toBeNull()
  return nextCursor!
}

async function expectRefused(promise: Promise<unknown>): Promise<void> {
  const error = await rejectionOf(promise)
  expect(error).toBeInstanceOf(ValidationError)
  expect((error as ValidationError).field).toBe('cursor')
}

describe('list cursors', () => {
  it('walk every key exactly once with the same filters, also from another instance with the same pepper', async () => {
    const store = new MemoryStore()
    const { keys, time } = setup({ store })
    for (let i = 0; i < 5; i++) {
      await keys.create({ name: `k${i}`, environment: 'live', tenantId: 't1' })
      time.advance(1)
    }
    const other = setup({ store }).keys
    const seen: string[] = []
    let cursor: string | null = null
    for (let page = 0; page < 10; page++) {
      const instance = page % 2 === 0 ? keys : other
      const result: Awaited<ReturnType<KeyManager['list']>> = await instance.list({ tenantId: 't1', limit: 2, cursor })
      seen.push(...result.items.map((key) => key.name))
      cursor = result.nextCursor
      if (cursor === null) break
    }
    expect(seen).toEqual(['k0', 'k1', 'k2', 'k3', 'k4'])
  })

  it('refuse a tampered cursor', async () => {
    const { keys } = setup()
    await seeded(keys, 't1', 'u1', 3)
    const cursor = await cursorOf(keys, { tenantId: 't1' })
    const [version, createdAt, id, mac] = cursor.split('.') as [string, string, string, string]
    const flip = (text: string) => text.slice(0, -1) + (text.endsWith('0') ? '1' : '0')
    for (const forged of [
      [version, flip(createdAt), id, mac].join('.'),
      [version, createdAt, flip(id), mac].join('.'),
      [version, createdAt, id, flip(mac)].join('.'),
      [version, createdAt, id].join('.'),
      `k1.${createdAt}.${id}`, // the 0.1.0 form: a bare position, accepted as such then
    ]) {
      await expectRefused(keys.list({ tenantId: 't1', cursor: forged }))
    }
  })

  it('refuse a cursor of another tenant, owner, environment, status, type or order', async () => {
    const { keys } = setup()
    await seeded(keys, 't1', 'u1', 3)
    await seeded(keys, 't2', 'u1', 3)
    await expectRefused(keys.list({ tenantId: 't2', cursor: await cursorOf(keys, { tenantId: 't1' }) }))
    await expectRefused(keys.list({ tenantId: 't1', ownerId: 'u2', cursor: await cursorOf(keys, { tenantId: 't1', ownerId: 'u1' }) }))
    await expectRefused(keys.list({ tenantId: 't1', environment: 'test', cursor: await cursorOf(keys, { tenantId: 't1' }) }))
    await expectRefused(keys.list({ tenantId: 't1', status: 'revoked', cursor: await cursorOf(keys, { tenantId: 't1', status: 'active' }) }))
    await expectRefused(keys.list({ tenantId: 't1', type: 'ingest', cursor: await cursorOf(keys, { tenantId: 't1' }) }))
    await expectRefused(keys.list({ tenantId: 't1', order: 'desc', cursor: await cursorOf(keys, { tenantId: 't1' }) }))
    await expectRefused(keys.list({ cursor: await cursorOf(keys, { tenantId: 't1' }) }))
  })

  it('refuse a cursor of another manager with another pepper', async () => {
    const store = new MemoryStore()
    const { keys } = setup({ store })
    await seeded(keys, 't1', 'u1', 3)
    const cursor = await cursorOf(keys, { tenantId: 't1' })
    await expectRefused(setup({ store, pepper: 'another-pepper-0123456789-abcdefgh' }).keys.list({ tenantId: 't1', cursor }))
  })

  it('of expiring are bound to their window and filters too', async () => {
    const { keys } = setup()
    for (let i = 0; i < 3; i++) await keys.create({ name: `k${i}`, environment: 'live', tenantId: 't1', expiresIn: '1d' })
    const { nextCursor } = await keys.expiring({ within: '2d', tenantId: 't1', limit: 1 })
    expect((await keys.expiring({ within: '2d', tenantId: 't1', cursor: nextCursor })).items).toHaveLength(2)
    await expectRefused(keys.expiring({ within: '3d', tenantId: 't1', cursor: nextCursor }))
    await expectRefused(keys.expiring({ within: '2d', tenantId: 't2', cursor: nextCursor }))
    await expectRefused(keys.list({ tenantId: 't1', cursor: nextCursor }))
  })
})
