import { describe, expect, it } from 'vitest'
import { KeyManager, scopeGrants } from '../../src/index.js'
import { MemoryStore } from '../../adapters/memory/index.js'
import { setup } from '../helpers.js'

describe('scope matching', () => {
  it.each([
    ['data:read', 'data:read', true],
    ['data:read', 'Data:read', false],
    ['data:read', 'data:read ', false],
    ['data:read', 'data:readx', false],
    ['data:read', 'data', false],
    ['*', 'anything:at:all', true],
    ['*', '*', true],
    ['data:*', 'data:read', true],
    ['data:*', 'data:read:own', true],
    ['data:*', 'data:*', true],
    ['data:*', 'data:', false],
    ['data:*', 'data', false],
    ['data:*', 'database:read', false],
    ['data:*', 'DATA:read', false],
    ['data:*', 'other:data:read', false],
    ['a:b:*', 'a:b:c', true],
    ['a:b:*', 'a:c', false],
  ])('with wildcards, %s grants %s: %s', (pattern, required, expected) => {
    expect(scopeGrants(pattern, required, true)).toBe(expected)
  })

  it.each([
    ['*', 'data:read', false],
    ['data:*', 'data:read', false],
    ['*', '*', true],
    ['data:*', 'data:*', true],
  ])('without wildcards, %s grants %s: %s', (pattern, required, expected) => {
    expect(scopeGrants(pattern, required, false)).toBe(expected)
  })
})

describe('scopes, roles and groups at verify time', () => {
  it('requires every listed scope', async () => {
    const { keys } = setup()
    const { token } = await keys.create({ name: 'x', environment: 'live', scopes: ['a', 'b'] })
    expect((await keys.verify(token, { scopes: ['a', 'b'] })).valid).toBe(true)
    expect(await keys.verify(token, { scopes: ['a', 'c'] })).toMatchObject({ reason: 'insufficient_scope' })
    expect((await keys.verify(token, { scopes: [] })).valid).toBe(true)
  })

  it('expands roles and groups into scopes', async () => {
    const { keys } = setup()
    const { token: reader } = await keys.create({ name: 'r', environment: 'live', roles: ['readonly'] })
    const { token: admin } = await keys.create({ name: 'a', environment: 'live', roles: ['admin'] })
    const { token: engineer } = await keys.create({ name: 'e', environment: 'live', groups: ['engineering'] })
    expect((await keys.verify(reader, { scopes: ['data:read'] })).valid).toBe(true)
    expect(await keys.verify(reader, { scopes: ['data:write'] })).toMatchObject({ reason: 'insufficient_scope' })
    expect((await keys.verify(admin, { scopes: ['data:write', 'billing:manage'] })).valid).toBe(true)
    const result = await keys.verify(engineer, { scopes: ['data:write'] })
    expect(result).toMatchObject({ valid: true, scopes: ['data:read', 'data:write'] })
  })

  it('resolves roles at verify time, so changing a role changes its keys', async () => {
    const store = new MemoryStore()
    const before = setup({ store, roles: { reporter: ['reports:read'] }, groups: {} }).keys
    const { token } = await before.create({ name: 'x', environment: 'live', roles: ['reporter'] })
    expect(await before.verify(token, { scopes: ['reports:export'] })).toMatchObject({ reason: 'insufficient_scope' })
    const after = setup({ store, roles: { reporter: ['reports:read', 'reports:export'] }, groups: {} }).keys
    expect((await after.verify(token, { scopes: ['reports:export'] })).valid).toBe(true)
    const removed = setup({ store, roles: {}, groups: {} }).keys
    expect(await removed.verify(token, { scopes: ['reports:read'] })).toMatchObject({ reason: 'insufficient_scope' })
  })

  it('treats * literally when wildcards are off', async () => {
    const keys = new KeyManager({ store: new MemoryStore(), scopeWildcards: false, roles: { star: ['*'] } })
    const { token } = await keys.create({ name: 'x', environment: 'live', roles: ['star'], scopes: ['data:*'] })
    expect(await keys.verify(token, { scopes: ['data:read'] })).toMatchObject({ reason: 'insufficient_scope' })
    expect((await keys.verify(token, { scopes: ['*', 'data:*'] })).valid).toBe(true)
  })
})
