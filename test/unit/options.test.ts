import { describe, expect, it, vi } from 'vitest'
import { ConfigError, KeyManager, KeywardenError, type KeyManagerOptions } from '../../src/index.js'
import { MemoryStore } from '../../adapters/memory/index.js'

function configError(options: Partial<KeyManagerOptions>): ConfigError {
  try {
    new KeyManager({ store: new MemoryStore(), ...options } as KeyManagerOptions)
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    expect(error).toBeInstanceOf(KeywardenError)
    return error as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('options', () => {
  it.each([
    ['a prefix with an underscore', { prefix: 'ac_me' }, 'prefix'],
    ['an upper-case prefix', { prefix: 'ACME' }, 'prefix'],
    ['an empty environment list', { environments: [] }, 'environments'],
    ['a repeated environment', { environments: ['live', 'live'] }, 'environments'],
    ['an environment with a hyphen', { environments: ['eu-live'] }, 'environments[0]'],
    ['a role with a bad scope', { roles: { admin: ['has space'] } }, 'roles.admin[0]'],
    ['a group naming an unknown role', { roles: { a: ['x'] }, groups: { g: ['b'] } }, 'groups.g[0]'],
    ['an empty pepper', { pepper: '' }, 'pepper'],
    ['an empty pepper in a list', { pepper: [{ id: 'a', secret: new Uint8Array() }] }, 'pepper[0].secret'],
    ['duplicate pepper IDs', { pepper: [{ id: 'a', secret: 'x'.repeat(32) }, { id: 'a', secret: 'y'.repeat(32) }] }, 'pepper'],
    ['a default beyond the maximum', { expiry: { default: '400d', max: '365d' } }, 'expiry.default'],
    ['a never default under a maximum', { expiry: { default: null, max: '365d' } }, 'expiry.default'],
    ['an unparseable duration', { expiry: { default: '3 months' } }, 'expiry.default'],
    ['a negative quota', { maxKeysPerOwner: -1 }, 'maxKeysPerOwner'],
    ['a fractional quota', { maxKeysPerOwner: 1.5 }, 'maxKeysPerOwner'],
    ['a start length above 8', { startLength: 9 }, 'startLength'],
    ['a clock that is not a function', { clock: 5 }, 'clock'],
    ['an unknown option', { prefx: 'acme' }, '(unknown field)'],
    ['a store without the contract', { store: {} }, 'store'],
  ])('rejects %s naming %s', (_, options, path) => {
    const error = configError(options as Partial<KeyManagerOptions>)
    expect(error.code).toBe('config_invalid')
    expect(error.issues.map((issue) => issue.path.join('.').replace(/\.(\d+)/g, '[$1]'))).toContain(path)
    expect(error.message).toContain(path)
  })

  it('never puts a pepper into the error message', () => {
    const error = configError({ pepper: [{ id: 'bad id!', secret: 'the-secret-pepper' }] })
    expect(error.message).not.toContain('the-secret-pepper')
  })

  it('reads Date.now at every call by default, so fake timers and a moving clock both work', async () => {
    vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
    try {
      const keys = new KeyManager({ store: new MemoryStore() })
      const { key, token } = await keys.create({ name: 'x', environment: 'live', expiresIn: '1h' })
      expect(key.createdAt).toEqual(new Date(Date.UTC(2030, 0, 1)))
      vi.setSystemTime(Date.UTC(2030, 0, 1, 1))
      expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'expired' })
    } finally {
      vi.useRealTimers()
    }
  })

  it('rejects a missing options object', () => {
    expect(() => new KeyManager(undefined as never)).toThrow(ConfigError)
  })

  it('freezes the resolved options', () => {
    const keys = new KeyManager({ store: new MemoryStore(), roles: { a: ['x'] } })
    expect(Object.isFrozen(keys.options)).toBe(true)
    expect(Object.isFrozen(keys.options.roles.a)).toBe(true)
    expect(keys.options).toMatchObject({ prefix: 'kw', environments: ['live', 'test'], startLength: 4, scopeWildcards: true })
  })
})
