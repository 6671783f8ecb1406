import { describe, expect, it } from 'vitest'
import { ValidationError, type ApiKey } from '../../src/index.js'
import { DAY, recordEvents, setup } from '../helpers.js'

async function seed() {
  const context = setup()
  const { keys } = context
  const soon = (await keys.create({ name: 'soon', environment: 'live', ownerId: 'u1', expiresIn: '1d' })).key
  const edge = (await keys.create({ name: 'edge', environment: 'live', ownerId: 'u2', expiresIn: '2d' })).key
  const later = (await keys.create({ name: 'later', environment: 'live', expiresIn: 2 * DAY + 1 })).key
  const revoked = (await keys.create({ name: 'revoked', environment: 'live', expiresIn: '1d' })).key
  await keys.revoke(revoked.id)
  await keys.create({ name: 'never', environment: 'live', expiresIn: '365d' })
  return { ...context, soon, edge, later }
}
/** Keys created in one instant are ordered by their random IDs, so compare names as sets. */
const names = (items: readonly ApiKey[]) => items.map((item) => item.name).sort()

describe('expiring', () => {
  it('lists keys expiring inside the window, not revoked ones, window end inclusive', async () => {
    const { keys } = await seed()
    expect(names((await keys.expiring({ within: '2d' })).items)).toEqual(['edge', 'soon'])
    expect(names((await keys.expiring({ within: '2d', ownerId: 'u2' })).items)).toEqual(['edge'])
  })

  it('does not list keys that already expired', async () => {
    const { keys, time } = await seed()
    time.advance(DAY)
    expect(names((await keys.expiring({ within: '2d' })).items)).toEqual(['edge', 'later'])
  })

  it('returns an array of keys that is also a page', async () => {
    const { keys, soon, edge } = await seed()
    const result = await keys.expiring({ within: '2d' })
    expect(Array.isArray(result)).toBe(true)
    expect(result.map((key) => key.id).sort()).toEqual([soon.id, edge.id].sort())
    expect(result.items).toEqual([...result])
    expect(result.nextCursor).toBeNull()
    expect(JSON.parse(JSON.stringify(result))).toHaveLength(2)
  })

  it('pages', async () => {
    const { keys } = await seed()
    const first = await keys.expiring({ within: '3d', limit: 2 })
    const second = await keys.expiring({ within: '3d', limit: 2, cursor: first.nextCursor })
    expect(names([...first.items, ...second.items])).toEqual(['edge', 'later', 'soon'])
    expect(second.nextCursor).toBeNull()
  })

  it('rejects a missing or empty window', async () => {
    const { keys } = await seed()
    await expect(keys.expiring({} as never)).rejects.toBeInstanceOf(ValidationError)
    await expect(keys.expiring({ within: 0 })).rejects.toBeInstanceOf(ValidationError)
  })
})

describe('notifyExpiring', () => {
  it('tells each owner once per key, however often it runs', async () => {
    const { keys, time } = await seed()
    const events = recordEvents(keys, ['expiring'])
    const told: string[] = []
    const notify = (key: ApiKey) => void told.push(key.name)
    const first = await keys.notifyExpiring({ within: '2d', notify })
    expect(names(first.notified)).toEqual(['edge', 'soon'])
    await keys.notifyExpiring({ within: '2d', notify })
    time.advance(DAY / 2)
    await keys.notifyExpiring({ within: '2d', notify })
    expect(told.slice(0, 2).sort()).toEqual(['edge', 'soon'])
    expect(told.slice(2)).toEqual(['later'])
    expect(events.map((event) => (event.type === 'expiring' ? event.key.name : '')).sort()).toEqual(['edge', 'later', 'soon'])
  })

  it('tells concurrent schedulers apart: each key is announced once', async () => {
    const { keys } = await seed()
    const told: string[] = []
    await Promise.all(Array.from({ length: 5 }, () => keys.notifyExpiring({ within: '2d', notify: (key) => void told.push(key.name) })))
    expect(told.sort()).toEqual(['edge', 'soon'])
  })

  it('announces again after the expiry was extended', async () => {
    const { keys, time, soon } = await seed()
    const told: string[] = []
    const notify = (key: ApiKey) => void told.push(key.name)
    await keys.notifyExpiring({ within: '2d', ownerId: 'u1', notify })
    await keys.update(soon.id, { expiresIn: '10d' })
    await keys.notifyExpiring({ within: '2d', ownerId: 'u1', notify })
    time.advance(9 * DAY)
    await keys.notifyExpiring({ within: '2d', ownerId: 'u1', notify })
    expect(told).toEqual(['soon', 'soon'])
  })

  it('offers a notice again when notify threw', async () => {
    const { keys } = await seed()
    const boom = new Error('smtp down')
    const failedRun = await keys.notifyExpiring({ within: '2d', ownerId: 'u1', notify: () => Promise.reject(boom) })
    expect(failedRun.notified).toEqual([])
    expect(failedRun.failed).toEqual([{ key: expect.objectContaining({ name: 'soon' }), error: boom }])
    const retry = await keys.notifyExpiring({ within: '2d', ownerId: 'u1', notify: () => undefined })
    expect(names(retry.notified)).toEqual(['soon'])
  })

  it('does not change updatedAt', async () => {
    const { keys, time, soon } = await seed()
    time.advance(1000)
    await keys.notifyExpiring({ within: '2d', notify: () => undefined })
    expect((await keys.get(soon.id))!.updatedAt).toEqual(soon.updatedAt)
  })

  it('requires a notify function', async () => {
    const { keys } = await seed()
    const error = await keys.notifyExpiring({ within: '2d' } as never).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'validation_failed', field: 'notify' })
  })
})
