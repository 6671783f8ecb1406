import { describe, expect, it } from 'vitest'
import { ConfigError, KeyManager, ValidationError, type Actor, type KeyEventMap, type KeyStore } from '../../src/index.js'
import { MemoryStore } from '../../adapters/memory/index.js'
import { DAY, START, recordEvents, setup } from '../helpers.js'

const ADMIN: Actor = { type: 'user', id: 'admin-1', tenantId: 'acme' }

describe('change context', () => {
  it.each([
    ['an unknown actor type', { actor: { type: 'robot', id: 'x' } }, ['actor', 'type']],
    ['an empty actor ID', { actor: { type: 'user', id: '' } }, ['actor', 'id']],
    ['an actor ID over 256 characters', { actor: { type: 'user', id: 'x'.repeat(257) } }, ['actor', 'id']],
    ['an unknown actor field', { actor: { type: 'user', id: 'u', email: 'a@b' } }, ['actor']],
    ['a reason over 1,000 characters', { reason: 'x'.repeat(1001) }, ['reason']],
    ['a reason with control characters', { reason: 'a\u0000b' }, ['reason']],
    ['an empty request ID', { requestId: '' }, ['requestId']],
    ['an unknown context field', { who: 'me' }, []],
    ['a context that is not an object', 'admin', []],
  ])('refuses %s with a ValidationError naming the field, writing nothing', async (_label, context, path) => {
    const { keys, store } = setup()
    const error = await keys.create({ name: 'CI', environment: 'live' }, context as never).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues[0]!.path.slice(0, path.length)).toEqual(path)
    expect((store as MemoryStore).size).toBe(0)
    expect((await keys.audit()).items).toEqual([])
  })

  it('refuses a bad context on every management call before changing anything', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'CI', environment: 'live' })
    const bad = { actor: { type: 'nobody', id: 'x' } } as never
    const calls = [
      () => keys.update(key.id, { name: 'y' }, bad),
      () => keys.disable(key.id, bad),
      () => keys.enable(key.id, bad),
      () => keys.revoke(key.id, bad),
      () => keys.delete(key.id, bad),
      () => keys.rotate(key.id, bad),
      () => keys.update(key.id, { name: 'y' }, { expectedVersion: 0 }),
      () => keys.disable(key.id, { expectedVersion: 1.5 }),
    ]
    for (const call of calls) await expect(call()).rejects.toBeInstanceOf(ValidationError)
    expect(await keys.get(key.id)).toMatchObject({ name: 'CI', enabled: true, revokedAt: null, version: 1 })
    expect((await keys.audit()).items).toHaveLength(1)
  })

  it('accepts expectedVersion in the patch as well as in the context', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'CI', environment: 'live' })
    await expect(keys.update(key.id, { name: 'y', expectedVersion: 7 })).rejects.toMatchObject({ code: 'version_conflict', expectedVersion: 7, actualVersion: 1 })
    expect(await keys.update(key.id, { name: 'y', expectedVersion: 1 })).toMatchObject({ name: 'y', version: 2 })
  })

  it('changes version on every management write, never on reads or verifies', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'CI', environment: 'live' })
    await keys.verify(token)
    await keys.get(key.id)
    expect((await keys.get(key.id))!.version).toBe(1)
    expect((await keys.disable(key.id)).version).toBe(2)
    expect((await keys.enable(key.id)).version).toBe(3)
    expect((await keys.rotate(key.id)).key.version).toBe(4)
  })

  it('sets updatedBy to the actor of the last change, or null when it named none', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'CI', environment: 'live' }, { actor: ADMIN })
    expect((await keys.update(key.id, { name: 'y' })).updatedBy).toBeNull()
    expect((await keys.get(key.id))!.createdBy).toEqual(ADMIN)
  })
})

describe('events', () => {
  it('carry the actor, reason, request ID and the real changes', async () => {
    const { keys } = setup()
    const events = recordEvents(keys, ['created', 'updated', 'disabled', 'revoked', 'deleted', 'rotated'])
    const context = { actor: ADMIN, reason: 'because', requestId: 'req-1' }
    const { key } = await keys.create({ name: 'CI', environment: 'live', groups: ['support'] }, context)
    await keys.update(key.id, { name: 'CI 2', groups: ['support'] }, context)
    await keys.disable(key.id, context)
    await keys.rotate(key.id, context)
    await keys.revoke(key.id, context)
    await keys.delete(key.id, context)
    expect(events.map((event) => event.type)).toEqual(['created', 'updated', 'disabled', 'rotated', 'revoked', 'deleted'])
    for (const event of events) expect(event).toMatchObject({ actor: ADMIN, reason: 'because', requestId: 'req-1' })
    const updated = events[1] as KeyEventMap['updated']
    expect(updated.changes).toEqual({ name: { from: 'CI', to: 'CI 2' } })
    expect(updated.fields).toEqual(['name'])
    expect((events[3] as KeyEventMap['rotated']).changes).toHaveProperty('start')
    expect(events[5]).toMatchObject({ changes: {} })
  })

  it('announce permissions_changed with the effective scopes before and after, only when grants change', async () => {
    const { keys } = setup()
    const changes: KeyEventMap['permissions_changed'][] = []
    keys.on('permissions_changed', (event) => void changes.push(event))
    const { key } = await keys.create({ name: 'CI', environment: 'live', scopes: ['own'] })
    await keys.update(key.id, { name: 'renamed' })
    await keys.update(key.id, { groups: ['support'] }, { actor: ADMIN })
    await keys.update(key.id, { groups: ['support'] })
    await keys.update(key.id, { roles: ['writer'], groups: [] })
    expect(changes).toHaveLength(2)
    expect(changes[0]).toMatchObject({ before: ['own'], after: ['own', 'data:read'], actor: ADMIN, changes: { groups: { from: [], to: ['support'] } } })
    expect(changes[1]).toMatchObject({ before: ['own', 'data:read'], after: ['own', 'data:read', 'data:write'] })
  })
})

describe('audit option', () => {
  it('is on by default: every change has its entry', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'CI', environment: 'live' })
    await keys.disable(key.id)
    expect((await keys.audit()).items.map((entry) => entry.action)).toEqual(['disabled', 'created'])
  })

  it('audit: false writes no entries', async () => {
    const { keys } = setup({ audit: false })
    const { key } = await keys.create({ name: 'CI', environment: 'live' }, { actor: ADMIN })
    await keys.disable(key.id, { actor: ADMIN, reason: 'x' })
    expect((await keys.audit()).items).toEqual([])
    expect(await keys.get(key.id)).toMatchObject({ createdBy: ADMIN, disabledBy: ADMIN, disabledReason: 'x' })
  })

  it('audit: true with a store that keeps no trail is a ConfigError; by default such a store runs without one', async () => {
    const plain = new MemoryStore()
    const store: KeyStore = {
      insert: (record, quota) => plain.insert(record, quota),
      get: (id) => plain.get(id),
      update: (record, version) => plain.update(record, version),
      delete: (id) => plain.delete(id),
      list: (query) => plain.list(query),
      touch: (id, at) => plain.touch(id, at),
    }
    expect(() => new KeyManager({ store, pepper: null, audit: true })).toThrow(ConfigError)
    const keys = new KeyManager({ store, pepper: null })
    expect(keys.options.audit).toBe(false)
    await keys.create({ name: 'CI', environment: 'live' })
    await expect(keys.audit()).rejects.toBeInstanceOf(ConfigError)
  })

  it.each([
    [{ limit: 0 }, ['limit']],
    [{ limit: 1001 }, ['limit']],
    [{ action: 'renamed' }, ['action']],
    [{ from: 'yesterday' }, ['from']],
    [{ cursor: 'nonsense' }, ['cursor']],
    [{ keyid: 'x' }, []],
  ])('audit(%j) is a ValidationError naming the field', async (input, path) => {
    const { keys } = setup()
    const error = await keys.audit(input as never).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues[0]!.path.slice(0, path.length)).toEqual(path)
  })

  it('pruneAudit validates its input and drains in batches', async () => {
    const { keys, time } = setup()
    for (let i = 0; i < 7; i++) await keys.create({ name: `k${i}`, environment: 'live' })
    time.advance(DAY)
    await expect(keys.pruneAudit({ before: 'now' } as never)).rejects.toBeInstanceOf(ValidationError)
    await expect(keys.pruneAudit({ before: new Date(), batchSize: 0 })).rejects.toBeInstanceOf(ValidationError)
    expect(await keys.pruneAudit({ before: new Date(START + 1), batchSize: 3 })).toBe(7)
    expect((await keys.audit()).items).toEqual([])
  })
})

describe('expiry notices', () => {
  it('hand the notifier the key with createdBy and updatedBy', async () => {
    const { keys } = setup()
    const editor: Actor = { type: 'user', id: 'editor-2' }
    const { key } = await keys.create({ name: 'CI', environment: 'live', expiresIn: '1d' }, { actor: ADMIN })
    await keys.update(key.id, { name: 'CI 2' }, { actor: editor })
    const told: unknown[] = []
    await keys.notifyExpiring({ within: '2d', notify: (notified) => void told.push({ createdBy: notified.createdBy, updatedBy: notified.updatedBy }) })
    expect(told).toEqual([{ createdBy: ADMIN, updatedBy: editor }])
    // The notice's own bookkeeping write names no actor and leaves no entry.
    expect(await keys.get(key.id)).toMatchObject({ updatedBy: editor })
    expect((await keys.audit({ keyId: key.id })).items).toHaveLength(2)
  })
})
