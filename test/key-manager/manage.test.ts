import { describe, expect, it } from 'vitest'
import { KeyNotFoundError, KeyRevokedError, StoreError, ValidationError, type ApiKey } from '../../src/index.js'
import { MemoryStore } from '../../adapters/memory/index.js'
import { ALL_EVENTS, DAY, START, recordEvents, rejectionOf, setup } from '../helpers.js'

describe('get', () => {
  it('returns null for an unknown ID', async () => {
    const { keys } = setup()
    expect(await keys.get('0000000000000000')).toBeNull()
  })

  it.each([[''], [42], [null], ['x'.repeat(257)]])('rejects the ID %j', async (id) => {
    const { keys } = setup()
    const error = await rejectionOf(keys.get(id as never))
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).field).toBe('id')
  })
})

describe('list', () => {
  async function seed() {
    const context = setup()
    const { keys, time } = context
    const make = async (name: string, extra: object) => {
      time.advance(1000)
      return (await keys.create({ name, environment: 'live', ...extra })).key
    }
    const a = await make('a', { ownerId: 'u1', tenantId: 't1', type: 'access' })
    const b = await make('b', { ownerId: 'u1', tenantId: 't2', type: 'ingest', environment: 'test' })
    const c = await make('c', { ownerId: 'u2', tenantId: 't1', type: 'access', expiresIn: '1d' })
    const d = await make('d', { ownerId: 'u2', tenantId: 't1' })
    const e = await make('e', { ownerId: 'u3' })
    await keys.disable(d.id)
    await keys.revoke(e.id)
    time.advance(2 * DAY)
    return { ...context, a, b, c, d, e }
  }
  const names = (items: readonly ApiKey[]) => items.map((item) => item.name)

  it('lists everything oldest first by default', async () => {
    const { keys } = await seed()
    expect(names((await keys.list()).items)).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect(names((await keys.list({ order: 'desc' })).items)).toEqual(['e', 'd', 'c', 'b', 'a'])
  })

  it.each([
    [{ ownerId: 'u1' }, ['a', 'b']],
    [{ tenantId: 't1' }, ['a', 'c', 'd']],
    [{ environment: 'test' }, ['b']],
    [{ type: 'access' }, ['a', 'c']],
    [{ status: 'active' }, ['a', 'b']],
    [{ status: 'expired' }, ['c']],
    [{ status: 'disabled' }, ['d']],
    [{ status: 'revoked' }, ['e']],
    [{ ownerId: 'u2', tenantId: 't1', status: 'disabled' }, ['d']],
    [{ ownerId: 'nobody' }, []],
  ] as const)('filters by %j', async (filter, expected) => {
    const { keys } = await seed()
    expect(names((await keys.list(filter)).items)).toEqual(expected)
  })

  it('pages with a cursor, each key once, and ends with a null cursor', async () => {
    const { keys, time } = setup()
    for (let i = 0; i < 7; i++) {
      time.advance(i % 2) // some keys share a creation time; the ID breaks ties
      await keys.create({ name: `k${i}`, environment: 'live' })
    }
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page: Awaited<ReturnType<typeof keys.list>> = await keys.list({ limit: 3, cursor })
      seen.push(...page.items.map((item) => item.id))
      cursor = page.nextCursor
      pages++
    } while (cursor)
    expect(pages).toBe(3)
    expect(seen).toHaveLength(7)
    expect(new Set(seen).size).toBe(7)
    expect(seen).toEqual((await keys.list({ limit: 100 })).items.map((item) => item.id))
  })

  it('returns a null cursor when the last page is exactly full', async () => {
    const { keys } = setup()
    for (let i = 0; i < 4; i++) await keys.create({ name: `k${i}`, environment: 'live' })
    const first = await keys.list({ limit: 2 })
    const second = await keys.list({ limit: 2, cursor: first.nextCursor })
    expect(second.items).toHaveLength(2)
    expect(second.nextCursor).toBeNull()
  })

  it.each([
    [{ limit: 0 }, 'limit'],
    [{ limit: 1001 }, 'limit'],
    [{ limit: 2.5 }, 'limit'],
    [{ status: 'gone' }, 'status'],
    [{ cursor: 'garbage' }, 'cursor'],
    [{ environment: 'prod' }, 'environment'],
    [{ order: 'sideways' }, 'order'],
    [{ sort: 'name' }, '(unknown field)'],
  ])('rejects %j', async (input, field) => {
    const { keys } = setup()
    const error = await rejectionOf(keys.list(input as never))
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).field).toBe(field)
  })
})

describe('update', () => {
  it('changes the named fields, keeps the rest and bumps updatedAt', async () => {
    const { keys, time } = setup()
    const { key } = await keys.create({ name: 'old', environment: 'live', scopes: ['a'], metadata: { x: 1 }, ownerId: 'u1' })
    time.advance(5000)
    const updated = await keys.update(key.id, {
      name: 'new',
      description: 'described',
      type: 'ingest',
      scopes: ['b', 'c'],
      roles: ['readonly'],
      groups: ['engineering'],
      metadata: { y: 2 },
    })
    expect(updated).toEqual({
      ...key,
      name: 'new',
      description: 'described',
      type: 'ingest',
      scopes: ['b', 'c'],
      roles: ['readonly'],
      groups: ['engineering'],
      metadata: { y: 2 },
      updatedAt: new Date(START + 5000),
      version: 2,
    })
    expect(await keys.get(key.id)).toEqual(updated)
  })

  it('treats fields given as undefined as omitted', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live', description: 'd', scopes: ['a'] })
    const updated = await keys.update(key.id, { name: 'y', description: undefined, scopes: undefined, expiresIn: undefined })
    expect(updated).toEqual({ ...key, name: 'y', updatedAt: updated.updatedAt, version: key.version + 1 })
    expect(updated).toMatchObject({ description: 'd', scopes: ['a'], expiresAt: key.expiresAt })
  })

  it('clears nullable fields with null', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live', description: 'd', type: 't' })
    expect(await keys.update(key.id, { description: null, type: null })).toMatchObject({ description: null, type: null })
  })

  it('extends expiry from now within the policy maximum', async () => {
    const { keys, time } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live', expiresIn: '1d' })
    time.advance(DAY - 1)
    const extended = await keys.update(key.id, { expiresIn: '30d' })
    expect(extended.expiresAt).toEqual(new Date(time.now + 30 * DAY))
    time.advance(2 * DAY)
    expect((await keys.verify(token)).valid).toBe(true)
    const exact = new Date(time.now + 10 * DAY)
    expect((await keys.update(key.id, { expiresAt: exact })).expiresAt).toEqual(exact)
  })

  it('revives an expired key when given a new expiry', async () => {
    const { keys, time } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live', expiresIn: '1d' })
    time.advance(2 * DAY)
    expect(await keys.verify(token)).toMatchObject({ reason: 'expired' })
    await keys.update(key.id, { expiresIn: '1d' })
    expect((await keys.verify(token)).valid).toBe(true)
  })

  it.each([
    [{ expiresIn: '400d' }, 'expiresIn'],
    [{ expiresIn: null }, 'expiresIn'],
    [{ expiresAt: new Date(START - 1) }, 'expiresAt'],
    [{ name: '' }, 'name'],
    [{ scopes: [''] }, 'scopes[0]'],
    [{ roles: ['ghost'] }, 'roles[0]'],
    [{ ownerId: 'someone-else' }, 'ownerId'],
    [{ environment: 'test' }, 'environment'],
    [{ enabled: false }, 'enabled'],
  ])('rejects %j and changes nothing', async (patch, field) => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    const error = await rejectionOf(keys.update(key.id, patch as never))
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).field).toBe(field)
    expect(await keys.get(key.id)).toEqual(key)
  })

  // better-auth refuses an empty update too: a patch that changes nothing is a caller's bug (a form
  // that lost its fields), and answering it with the unchanged key would hide it.
  it.each([
    ['an empty patch', {}],
    ['a patch of undefined fields only', { name: undefined, scopes: undefined }],
  ])('refuses %s with a ValidationError and changes nothing', async (_, patch) => {
    const { keys, time } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    const events = recordEvents(keys, ALL_EVENTS)
    time.advance(1000)
    const error = await rejectionOf(keys.update(key.id, patch))
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).message).toContain('names no field to change')
    expect(await keys.get(key.id)).toEqual(key)
    expect(events).toEqual([])
  })

  it('fails for unknown and revoked keys', async () => {
    const { keys } = setup()
    await expect(keys.update('0000000000000000', { name: 'y' })).rejects.toBeInstanceOf(KeyNotFoundError)
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    await keys.revoke(key.id)
    await expect(keys.update(key.id, { name: 'y' })).rejects.toBeInstanceOf(KeyRevokedError)
  })

  it('keeps every change when updates race each other and a disable', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    await Promise.all([keys.update(key.id, { name: 'renamed' }), keys.update(key.id, { scopes: ['s'] }), keys.disable(key.id)])
    expect(await keys.get(key.id)).toMatchObject({ name: 'renamed', scopes: ['s'], enabled: false })
  })
})

describe('enable, disable, revoke, delete', () => {
  it('disables and enables, idempotently', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    expect((await keys.disable(key.id)).enabled).toBe(false)
    expect((await keys.disable(key.id)).enabled).toBe(false)
    expect((await keys.enable(key.id)).enabled).toBe(true)
    expect((await keys.enable(key.id)).enabled).toBe(true)
  })

  it('revokes irreversibly but keeps the record', async () => {
    const { keys, time } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    time.advance(1000)
    const revoked = await keys.revoke(key.id)
    expect(revoked.revokedAt).toEqual(new Date(time.now))
    expect(await keys.get(key.id)).toEqual(revoked)
    expect(keys.statusOf(revoked)).toBe('revoked')
    time.advance(1000)
    expect((await keys.revoke(key.id)).revokedAt).toEqual(revoked.revokedAt)
    await expect(keys.enable(key.id)).rejects.toBeInstanceOf(KeyRevokedError)
    await expect(keys.disable(key.id)).rejects.toBeInstanceOf(KeyRevokedError)
    await expect(keys.rotate(key.id)).rejects.toBeInstanceOf(KeyRevokedError)
    expect(await rejectionOf(keys.enable(key.id))).toMatchObject({ code: 'key_revoked', keyId: key.id })
  })

  it('deletes for good', async () => {
    const { keys, store } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    await keys.delete(key.id)
    expect(await keys.get(key.id)).toBeNull()
    expect((store as MemoryStore).size).toBe(0)
    expect(await keys.verify(token)).toMatchObject({ reason: 'unknown_key' })
    await expect(keys.delete(key.id)).rejects.toBeInstanceOf(KeyNotFoundError)
  })

  it('never brings back a key deleted while an update races it', async () => {
    const { keys } = setup()
    for (let i = 0; i < 20; i++) {
      const { key } = await keys.create({ name: 'x', environment: 'live' })
      const outcomes = await Promise.allSettled([keys.update(key.id, { name: 'y' }), keys.delete(key.id), keys.disable(key.id)])
      expect(outcomes[1]!.status).toBe('fulfilled')
      for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(KeyNotFoundError)
      expect(await keys.get(key.id)).toBeNull()
    }
  })

  it.each(['enable', 'disable', 'revoke', 'delete', 'rotate'] as const)('%s fails with KeyNotFoundError for an unknown key', async (method) => {
    const { keys } = setup()
    const error = await rejectionOf(keys[method]('0000000000000000'))
    expect(error).toBeInstanceOf(KeyNotFoundError)
    expect(error).toMatchObject({ code: 'key_not_found', keyId: '0000000000000000' })
  })
})

describe('store failures', () => {
  it.each(['revoke', 'disable', 'rotate', 'update'] as const)('%s says so with a StoreError and changes nothing', async (method) => {
    const store = new MemoryStore()
    const { keys } = setup({ store })
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    const events = recordEvents(keys, ALL_EVENTS)
    store.update = async () => {
      throw new Error('server closed the connection')
    }
    const call = method === 'update' ? keys.update(key.id, { name: 'y' }) : keys[method](key.id)
    const error = await rejectionOf(call)
    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ operation: 'update' })
    expect(await keys.get(key.id)).toEqual(key)
    expect(events).toEqual([])
    expect((await keys.verify(token)).valid).toBe(true)
  })

  it('list and get report a StoreError', async () => {
    const store = new MemoryStore()
    const { keys } = setup({ store })
    store.list = store.get = async () => {
      throw new Error('timeout')
    }
    await expect(keys.list()).rejects.toMatchObject({ code: 'store_failed', operation: 'list' })
    await expect(keys.get('0000000000000000')).rejects.toMatchObject({ code: 'store_failed', operation: 'get' })
  })
})

describe('statusOf', () => {
  it('judges at the manager clock', async () => {
    const { keys, time } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live', expiresIn: '1h' })
    expect(keys.statusOf(key)).toBe('active')
    time.advance(3_600_000)
    expect(keys.statusOf(key)).toBe('expired')
  })
})
