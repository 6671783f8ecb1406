import { describe, expect, it } from 'vitest'
import { inspect } from 'node:util'
import { KeyManager, QuotaExceededError, StoreError, ValidationError } from '../../src/index.js'
import { MemoryStore } from '../../adapters/memory/index.js'
import { DAY, START, recordEvents, rejectionOf, setup } from '../helpers.js'

describe('create', () => {
  it('returns the public record and a token that verifies', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({
      name: 'CI',
      description: 'deploys from main',
      ownerId: 'u1',
      tenantId: 't1',
      environment: 'live',
      type: 'access',
      scopes: ['data:read'],
      roles: ['readonly'],
      groups: ['support'],
      metadata: { team: 'platform', tags: ['a', 'b'], nested: { n: 1 } },
    })
    expect(key).toEqual({
      id: expect.stringMatching(/^[0-9A-Za-z]{16}$/),
      name: 'CI',
      description: 'deploys from main',
      ownerId: 'u1',
      tenantId: 't1',
      environment: 'live',
      type: 'access',
      scopes: ['data:read'],
      roles: ['readonly'],
      groups: ['support'],
      metadata: { team: 'platform', tags: ['a', 'b'], nested: { n: 1 } },
      start: expect.stringMatching(/^[0-9A-Za-z]{4}$/),
      createdAt: new Date(START),
      updatedAt: new Date(START),
      expiresAt: new Date(START + 90 * DAY),
      lastUsedAt: null,
      enabled: true,
      revokedAt: null,
      createdBy: null,
      updatedBy: null,
      version: 1,
      disabledReason: null,
      disabledBy: null,
    })
    expect(token).toMatch(new RegExp(`^acme_live_${key.id}_[0-9A-Za-z]{38}$`))
    expect(token.split('_')[3]!.startsWith(key.start)).toBe(true)
    expect(await keys.get(key.id)).toEqual(key)
    expect((await keys.verify(token)).valid).toBe(true)
  })

  it('fills optional fields with nulls and empty lists', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'bare', environment: 'test' })
    expect(key).toMatchObject({ description: null, ownerId: null, tenantId: null, type: null, scopes: [], roles: [], groups: [], metadata: {} })
  })

  it('keeps the configured number of leading secret characters in start', async () => {
    const { keys } = setup({ startLength: 8 })
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    expect(key.start).toHaveLength(8)
    expect(token.split('_')[3]!.slice(0, 8)).toBe(key.start)
    const none = setup({ startLength: 0 })
    expect((await none.keys.create({ name: 'x', environment: 'live' })).key.start).toBe('')
  })

  it('issues distinct IDs and secrets', async () => {
    const { keys } = setup()
    const issued = await Promise.all(Array.from({ length: 200 }, (_, i) => keys.create({ name: `k${i}`, environment: 'live' })))
    expect(new Set(issued.map((item) => item.key.id)).size).toBe(200)
    expect(new Set(issued.map((item) => item.token.split('_')[3])).size).toBe(200)
  })

  it('uses the only environment when one is configured and none is given', async () => {
    const { keys } = setup({ environments: ['prod'] })
    const { key, token } = await keys.create({ name: 'x' })
    expect(key.environment).toBe('prod')
    expect(token.startsWith('acme_prod_')).toBe(true)
  })

  it('requires an environment when several are configured', async () => {
    const { keys } = setup()
    const error = await rejectionOf(keys.create({ name: 'x' }))
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).field).toBe('environment')
  })

  describe('expiry', () => {
    it('applies the policy default when no expiry is named', async () => {
      const { keys } = setup({ expiry: { default: '30d', max: '365d' } })
      const { key } = await keys.create({ name: 'x', environment: 'live' })
      expect(key.expiresAt).toEqual(new Date(START + 30 * DAY))
    })

    it('takes the maximum as default when only a maximum is configured', async () => {
      const { keys } = setup({ expiry: { max: '10d' } })
      const { key } = await keys.create({ name: 'x', environment: 'live' })
      expect(key.expiresAt).toEqual(new Date(START + 10 * DAY))
    })

    it('never expires by default without a policy', async () => {
      const { keys } = setup({ expiry: {} })
      const { key } = await keys.create({ name: 'x', environment: 'live' })
      expect(key.expiresAt).toBeNull()
    })

    it.each([
      ['30d', 30 * DAY],
      ['24h', DAY],
      ['15m', 900_000],
      ['90s', 90_000],
      [5_000, 5_000],
    ] as const)('accepts expiresIn %s', async (expiresIn, ms) => {
      const { keys } = setup()
      const { key } = await keys.create({ name: 'x', environment: 'live', expiresIn })
      expect(key.expiresAt).toEqual(new Date(START + ms))
    })

    it('accepts an exact expiresAt', async () => {
      const { keys } = setup()
      const at = new Date(START + 3 * DAY + 123)
      const { key } = await keys.create({ name: 'x', environment: 'live', expiresAt: at })
      expect(key.expiresAt).toEqual(at)
    })

    it('accepts never (null) when the policy has no maximum', async () => {
      const { keys } = setup({ expiry: { default: '90d', max: null } })
      expect((await keys.create({ name: 'x', environment: 'live', expiresIn: null })).key.expiresAt).toBeNull()
      expect((await keys.create({ name: 'y', environment: 'live', expiresAt: null })).key.expiresAt).toBeNull()
    })

    it('accepts exactly the maximum', async () => {
      const { keys } = setup()
      const { key } = await keys.create({ name: 'x', environment: 'live', expiresIn: '365d' })
      expect(key.expiresAt).toEqual(new Date(START + 365 * DAY))
    })

    it.each([
      ['expiresIn beyond the maximum', { expiresIn: 365 * DAY + 1 }, 'expiresIn'],
      ['expiresAt beyond the maximum', { expiresAt: new Date(START + 365 * DAY + 1) }, 'expiresAt'],
      ['never under a maximum', { expiresIn: null }, 'expiresIn'],
      ['expiresAt null under a maximum', { expiresAt: null }, 'expiresAt'],
      ['expiresAt in the past', { expiresAt: new Date(START - 1) }, 'expiresAt'],
      ['expiresAt now', { expiresAt: new Date(START) }, 'expiresAt'],
      ['expiresIn zero', { expiresIn: 0 }, 'expiresIn'],
      ['expiresIn negative', { expiresIn: -5 }, 'expiresIn'],
      ['expiresIn unparseable', { expiresIn: '3 days' }, 'expiresIn'],
      ['expiresIn fractional', { expiresIn: 1.5 }, 'expiresIn'],
      ['both expiresIn and expiresAt', { expiresIn: '1d', expiresAt: new Date(START + DAY) }, 'expiresAt'],
      ['an invalid Date', { expiresAt: new Date(Number.NaN) }, 'expiresAt'],
    ])('rejects %s without clamping and without writing', async (_, expiry, field) => {
      const { keys, store } = setup()
      const error = await rejectionOf(keys.create({ name: 'x', environment: 'live', ...(expiry as object) }))
      expect(error).toBeInstanceOf(ValidationError)
      expect((error as ValidationError).field).toBe(field)
      expect((store as MemoryStore).size).toBe(0)
    })
  })

  describe('quota', () => {
    it('limits the non-revoked keys of one owner', async () => {
      const { keys } = setup({ maxKeysPerOwner: 2 })
      const first = await keys.create({ name: 'a', ownerId: 'u1', environment: 'live' })
      await keys.create({ name: 'b', ownerId: 'u1', environment: 'test' })
      const error = await rejectionOf(keys.create({ name: 'c', ownerId: 'u1', environment: 'live' }))
      expect(error).toBeInstanceOf(QuotaExceededError)
      expect(error).toMatchObject({ code: 'quota_exceeded', ownerId: 'u1', limit: 2 })
      await keys.create({ name: 'other owner', ownerId: 'u2', environment: 'live' })
      await keys.create({ name: 'no owner', environment: 'live' })

      await keys.revoke(first.key.id)
      await expect(keys.create({ name: 'c', ownerId: 'u1', environment: 'live' })).resolves.toBeDefined()
    })

    it('counts disabled and expired keys, but not deleted ones', async () => {
      const { keys, time } = setup({ maxKeysPerOwner: 2 })
      const a = await keys.create({ name: 'a', ownerId: 'u1', environment: 'live', expiresIn: '1d' })
      const b = await keys.create({ name: 'b', ownerId: 'u1', environment: 'live' })
      await keys.disable(b.key.id)
      time.advance(2 * DAY)
      await expect(keys.create({ name: 'c', ownerId: 'u1', environment: 'live' })).rejects.toBeInstanceOf(QuotaExceededError)
      await keys.delete(a.key.id)
      await expect(keys.create({ name: 'c', ownerId: 'u1', environment: 'live' })).resolves.toBeDefined()
    })

    it('gives exactly 2 keys and 48 QuotaExceededErrors to 50 parallel creates', async () => {
      const { keys } = setup({ maxKeysPerOwner: 2 })
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) => keys.create({ name: `k${i}`, ownerId: 'u1', environment: 'live' })),
      )
      const created = results.filter((result) => result.status === 'fulfilled')
      const refused = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []))
      expect(created).toHaveLength(2)
      expect(refused).toHaveLength(48)
      for (const reason of refused) expect(reason).toBeInstanceOf(QuotaExceededError)
      expect((await keys.list({ ownerId: 'u1' })).items).toHaveLength(2)
    })

    it('passes the owner context to a function-valued quota', async () => {
      const seen: unknown[] = []
      const { keys } = setup({
        maxKeysPerOwner: (owner, context) => {
          seen.push({ owner, context })
          return owner.role === 'admin' ? Infinity : 2
        },
      })
      for (let i = 0; i < 5; i++) await keys.create({ name: `a${i}`, ownerId: 'admin1', environment: 'live', owner: { role: 'admin' } })
      await keys.create({ name: 'u', ownerId: 'u1', environment: 'live', owner: { role: 'user' } })
      await keys.create({ name: 'u', ownerId: 'u1', environment: 'live' })
      await expect(keys.create({ name: 'u', ownerId: 'u1', environment: 'live', owner: { role: 'user' } })).rejects.toBeInstanceOf(QuotaExceededError)
      expect(seen[0]).toEqual({ owner: { id: 'admin1', role: 'admin' }, context: { ownerId: 'admin1', tenantId: null, environment: 'live' } })
      expect(seen[6]).toEqual({ owner: { id: 'u1' }, context: { ownerId: 'u1', tenantId: null, environment: 'live' } })
    })

    it('refuses every key when the quota is 0', async () => {
      const { keys } = setup({ maxKeysPerOwner: 0 })
      await expect(keys.create({ name: 'x', ownerId: 'u1', environment: 'live' })).rejects.toBeInstanceOf(QuotaExceededError)
    })

    it('reports a quota function that returns nonsense as a configuration error', async () => {
      const { keys } = setup({ maxKeysPerOwner: () => -1 })
      await expect(keys.create({ name: 'x', ownerId: 'u1', environment: 'live' })).rejects.toMatchObject({ code: 'config_invalid' })
    })
  })

  describe('bad input', () => {
    it.each([
      ['a missing name', { environment: 'live' }, 'name'],
      ['an empty name', { name: '', environment: 'live' }, 'name'],
      ['a blank name', { name: '   ', environment: 'live' }, 'name'],
      ['a name with a control character', { name: 'a\u0000b', environment: 'live' }, 'name'],
      ['a name that is too long', { name: 'x'.repeat(201), environment: 'live' }, 'name'],
      ['a name of the wrong type', { name: 42, environment: 'live' }, 'name'],
      ['an unknown environment', { name: 'x', environment: 'prod' }, 'environment'],
      ['an unknown role', { name: 'x', environment: 'live', roles: ['root'] }, 'roles[0]'],
      ['an unknown group', { name: 'x', environment: 'live', groups: ['nobody'] }, 'groups[0]'],
      ['a scope with a space', { name: 'x', environment: 'live', scopes: ['data read'] }, 'scopes[0]'],
      ['a scope with a misplaced wildcard', { name: 'x', environment: 'live', scopes: ['data:*:read'] }, 'scopes[0]'],
      ['a repeated scope', { name: 'x', environment: 'live', scopes: ['a', 'a'] }, 'scopes'],
      ['scopes that are not a list', { name: 'x', environment: 'live', scopes: 'data:read' }, 'scopes'],
      ['an empty owner ID', { name: 'x', environment: 'live', ownerId: '' }, 'ownerId'],
      ['a bad type label', { name: 'x', environment: 'live', type: 'has space' }, 'type'],
      ['metadata that is an array', { name: 'x', environment: 'live', metadata: [1] }, 'metadata'],
      ['metadata with a function', { name: 'x', environment: 'live', metadata: { f: () => 1 } }, 'metadata'],
      ['metadata with a Date', { name: 'x', environment: 'live', metadata: { d: new Date() } }, 'metadata'],
      ['metadata with NaN', { name: 'x', environment: 'live', metadata: { n: Number.NaN } }, 'metadata'],
      ['huge metadata', { name: 'x', environment: 'live', metadata: { big: 'x'.repeat(9000) } }, 'metadata'],
      ['deep metadata', { name: 'x', environment: 'live', metadata: JSON.parse('{"a":'.repeat(12) + '1' + '}'.repeat(12)) }, 'metadata'],
      ['an unknown field', { name: 'x', environment: 'live', colour: 'red' }, '(unknown field)'],
    ])('rejects %s, names the field and writes nothing', async (_, input, field) => {
      const { keys, store } = setup()
      const error = await rejectionOf(keys.create(input as never))
      expect(error).toBeInstanceOf(ValidationError)
      expect(error).toMatchObject({ code: 'validation_failed', field })
      expect((store as MemoryStore).size).toBe(0)
    })

    it('rejects cyclic metadata without overflowing the stack', async () => {
      const { keys } = setup()
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      await expect(keys.create({ name: 'x', environment: 'live', metadata: cyclic as never })).rejects.toBeInstanceOf(ValidationError)
    })

    it('rejects input that is not an object', async () => {
      const { keys } = setup()
      for (const input of [null, undefined, 'name', 7]) {
        await expect(keys.create(input as never)).rejects.toBeInstanceOf(ValidationError)
      }
    })

    it('does not echo input values in the error message', async () => {
      const { keys } = setup()
      const error = (await rejectionOf(
        keys.create({ name: 'x', environment: 'live', scopes: ['evil value<script>'], 'evil<field>': 'x' } as never),
      )) as Error
      expect(error.message).not.toContain('evil')
      expect(inspect(error)).not.toContain('<script>')
    })
  })

  it('hands out no secret when the store fails, and wraps the failure', async () => {
    const store = new MemoryStore()
    store.insert = async () => {
      throw new Error('connection reset')
    }
    const { keys } = setup({ store })
    const events = recordEvents(keys, ['created'])
    const error = await rejectionOf(keys.create({ name: 'x', environment: 'live' }))
    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ code: 'store_failed', operation: 'insert', cause: new Error('connection reset') })
    expect(events).toEqual([])
  })

  it('gives up with a StoreError when the store reports every fresh key ID as taken', async () => {
    const store = new MemoryStore()
    store.insert = async () => 'id_taken'
    const { keys } = setup({ store })
    await expect(keys.create({ name: 'x', environment: 'live' })).rejects.toBeInstanceOf(StoreError)
  })

  it('works with every option left at its default', async () => {
    const keys = new KeyManager({ store: new MemoryStore() })
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    expect(token.startsWith('kw_live_')).toBe(true)
    expect(key.expiresAt).toBeNull()
    expect(await keys.verify(token)).toMatchObject({ valid: true })
  })
})
