import { describe, expect, it, vi } from 'vitest'
import { ALL_EVENTS, recordEvents, setup } from '../helpers.js'

describe('events', () => {
  it('reports the lifecycle in order, with the key and the time', async () => {
    const { keys, time } = setup()
    const events = recordEvents(keys, ALL_EVENTS)
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    await keys.verify(token)
    await keys.update(key.id, { name: 'y', scopes: ['s'] })
    await keys.disable(key.id)
    await keys.enable(key.id)
    await keys.rotate(key.id)
    await keys.verify(token)
    await keys.revoke(key.id)
    await keys.delete(key.id)
    expect(events.map((event) => event.type)).toEqual([
      'created',
      'verified',
      'updated',
      'disabled',
      'enabled',
      'rotated',
      'rejected',
      'revoked',
      'deleted',
    ])
    for (const event of events) {
      expect(event.at).toEqual(new Date(time.now))
      if ('key' in event) expect(event.key.id).toBe(key.id)
    }
    expect(events[2]).toMatchObject({ type: 'updated', fields: ['name', 'scopes'], changes: { name: { from: 'x', to: 'y' }, scopes: { from: [], to: ['s'] } } })
    expect(events[6]).toMatchObject({ type: 'rejected', reason: 'wrong_secret', keyId: key.id })
  })

  it('emits nothing for no-op changes', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    const events = recordEvents(keys, ALL_EVENTS)
    await keys.enable(key.id)
    await keys.update(key.id, { name: 'x' }) // the same name: nothing changes
    await keys.revoke(key.id)
    await keys.revoke(key.id)
    expect(events.map((event) => event.type)).toEqual(['revoked'])
  })

  it('emits nothing when an operation fails', async () => {
    const { keys } = setup({ maxKeysPerOwner: 0 })
    const events = recordEvents(keys, ALL_EVENTS)
    await keys.create({ name: 'x', environment: 'live', ownerId: 'u1' }).catch(() => undefined)
    await keys.create({ name: '', environment: 'live' }).catch(() => undefined)
    await keys.revoke('0000000000000000').catch(() => undefined)
    expect(events).toEqual([])
  })

  it('unsubscribes', async () => {
    const { keys } = setup()
    const listener = vi.fn()
    const stop = keys.on('created', listener)
    await keys.create({ name: 'x', environment: 'live' })
    stop()
    await keys.create({ name: 'y', environment: 'live' })
    keys.on('created', listener)
    keys.off('created', listener)
    await keys.create({ name: 'z', environment: 'live' })
    expect(listener).toHaveBeenCalledTimes(1)
  })

  it('never lets a throwing or rejecting listener fail the operation', async () => {
    const reported: string[] = []
    const { keys } = setup({ onListenerError: (_, type) => void reported.push(type) })
    const second = vi.fn()
    keys.on('created', () => {
      throw new Error('listener bug')
    })
    keys.on('created', second)
    keys.on('verified', async () => {
      throw new Error('async listener bug')
    })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    expect((await keys.verify(token)).valid).toBe(true)
    await new Promise((resolve) => setImmediate(resolve))
    expect(second).toHaveBeenCalledTimes(1)
    expect(reported).toEqual(['created', 'verified'])
  })
})
