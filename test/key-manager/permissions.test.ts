import { describe, expect, it } from 'vitest'
import { KeyNotFoundError, StoreError, ValidationError, type RoleMap } from '../../src/index.js'
import { setup } from '../helpers.js'

describe('keys.permissions', () => {
  it('lists every effective scope once and every way it is granted', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'CI', environment: 'live', scopes: ['data:read', 'own'], roles: ['writer'], groups: ['support'] })
    const permissions = await keys.permissions(key.id)
    expect(permissions.scopes).toEqual(['data:read', 'own', 'data:write'])
    expect(permissions.grants).toEqual([
      { scope: 'data:read', via: 'key' },
      { scope: 'own', via: 'key' },
      { scope: 'data:read', via: 'role', role: 'writer' },
      { scope: 'data:write', via: 'role', role: 'writer' },
      { scope: 'data:read', via: 'group', group: 'support', role: 'readonly' },
    ])
  })

  it('answers KeyNotFoundError for an unknown key and ValidationError for a token', async () => {
    const { keys } = setup()
    const { token } = await keys.create({ name: 'CI', environment: 'live' })
    await expect(keys.permissions('NoSuchKey0000000')).rejects.toBeInstanceOf(KeyNotFoundError)
    await expect(keys.permissions(token)).rejects.toBeInstanceOf(ValidationError)
  })
})

describe('roles and groups at run time', () => {
  function tenantRoles() {
    const byTenant = new Map<string | null, RoleMap>([
      ['acme', { reader: ['data:read'] }],
      ['globex', { reader: ['reports:read'] }],
    ])
    const calls: (string | null)[] = []
    return {
      byTenant,
      calls,
      roles: (tenantId: string | null) => {
        calls.push(tenantId)
        return Promise.resolve(byTenant.get(tenantId) ?? {})
      },
    }
  }

  it('resolves a role by the key\'s tenant, caches it for rolesCacheTtl, and sees a change after it', async () => {
    const source = tenantRoles()
    const { keys, time } = setup({ roles: source.roles, groups: {}, rolesCacheTtl: '30s' })
    const acme = await keys.create({ name: 'a', environment: 'live', tenantId: 'acme', roles: ['reader'] })
    const globex = await keys.create({ name: 'g', environment: 'live', tenantId: 'globex', roles: ['reader'] })
    expect((await keys.verify(acme.token, { scopes: ['data:read'] })).valid).toBe(true)
    expect((await keys.verify(globex.token, { scopes: ['data:read'] })).valid).toBe(false)
    expect((await keys.verify(globex.token, { scopes: ['reports:read'] })).valid).toBe(true)
    const callsBefore = source.calls.length
    source.byTenant.set('acme', { reader: ['data:read', 'data:write'] })
    expect((await keys.verify(acme.token, { scopes: ['data:write'] })).valid).toBe(false) // still cached
    expect(source.calls.length).toBe(callsBefore)
    time.advance(30_000)
    expect((await keys.verify(acme.token, { scopes: ['data:write'] })).valid).toBe(true)
  })

  it('invalidateRoles(tenantId) makes a change take effect at once on this instance', async () => {
    const source = tenantRoles()
    const { keys } = setup({ roles: source.roles, groups: {}, rolesCacheTtl: '1h' })
    const { token } = await keys.create({ name: 'a', environment: 'live', tenantId: 'acme', roles: ['reader'] })
    expect((await keys.verify(token, { scopes: ['data:read'] })).valid).toBe(true)
    source.byTenant.set('acme', { reader: [] })
    keys.invalidateRoles('acme')
    expect(await keys.verify(token, { scopes: ['data:read'] })).toMatchObject({ valid: false, reason: 'insufficient_scope' })
  })

  it('checks role and group names against the tenant\'s own on create and update', async () => {
    const source = tenantRoles()
    const { keys } = setup({ roles: source.roles, groups: () => ({ team: ['reader'] }) })
    await expect(keys.create({ name: 'a', environment: 'live', tenantId: 'acme', roles: ['admin'] })).rejects.toMatchObject({
      code: 'validation_failed',
      issues: [{ path: ['roles', 0] }],
    })
    const { key } = await keys.create({ name: 'a', environment: 'live', tenantId: 'acme', groups: ['team'] })
    await expect(keys.update(key.id, { groups: ['nope'] })).rejects.toMatchObject({ issues: [{ path: ['groups', 0] }] })
    expect((await keys.permissions(key.id)).grants).toEqual([{ scope: 'data:read', via: 'group', group: 'team', role: 'reader' }])
  })

  it('a roles function that throws or returns garbage fails verify closed with a StoreError', async () => {
    let answer: () => unknown = () => ({ reader: ['data:read'] })
    const { keys } = setup({ roles: () => answer() as RoleMap, groups: {}, rolesCacheTtl: 1 })
    const { token } = await keys.create({ name: 'a', environment: 'live', tenantId: 'acme', roles: ['reader'] })
    answer = () => {
      throw new Error('database down')
    }
    keys.invalidateRoles()
    await expect(keys.verify(token)).rejects.toBeInstanceOf(StoreError)
    answer = () => ({ reader: 'data:read' })
    keys.invalidateRoles('acme')
    await expect(keys.verify(token)).rejects.toBeInstanceOf(StoreError)
    answer = () => ({ reader: ['data:read'] })
    keys.invalidateRoles('acme')
    expect((await keys.verify(token, { scopes: ['data:read'] })).valid).toBe(true)
  })

  it('refuses a roles option that is neither a map nor a function', () => {
    expect(() => setup({ roles: 42 as never })).toThrow(/roles/)
  })
})
