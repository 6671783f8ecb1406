/**
 * Errors never repeat what could be a secret (security review, finding 11): a token passed where a
 * key ID belongs, a token or secret used as a field name, unknown field names in general.
 */
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { ConfigError, KeyNotFoundError, ValidationError } from '../../src/index.js'
import { KeyManager } from '../../src/index.js'
import { MemoryStore } from '../../adapters/memory/index.js'
import { rejectionOf, setup } from '../helpers.js'

/** Everything an error shows: message, stack, own fields, issues. */
function printed(error: unknown): string {
  return [String(error), (error as Error).stack, inspect(error, { depth: Infinity, showHidden: true }), JSON.stringify(error)].join('\n')
}

describe('a token where a key ID belongs', () => {
  it.each(['get', 'revoke', 'disable', 'enable', 'delete', 'rotate', 'update'] as const)('%s(token) is a ValidationError that says so and does not repeat it', async (method) => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    const secret = token.split('_')[3]!
    const call = {
      get: () => keys.get(token),
      revoke: () => keys.revoke(token),
      disable: () => keys.disable(token),
      enable: () => keys.enable(token),
      delete: () => keys.delete(token),
      rotate: () => keys.rotate(token),
      update: () => keys.update(token, { name: 'y' }),
    }[method]
    const error = await rejectionOf(call())
    expect(error).toBeInstanceOf(ValidationError)
    expect(error).not.toBeInstanceOf(KeyNotFoundError)
    expect((error as ValidationError).field).toBe('id')
    expect((error as ValidationError).message).toContain('parseToken')
    expect(printed(error)).not.toContain(secret.slice(0, 16))
    expect((await keys.get(key.id))!.revokedAt).toBeNull()
  })

  it('also a bare secret, or a token with a typo', async () => {
    const { keys } = setup()
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    const secret = token.split('_')[3]!.slice(0, 32)
    for (const id of [secret, token.slice(0, -1) + (token.endsWith('a') ? 'b' : 'a'), `other_${token}`]) {
      const error = await rejectionOf(keys.revoke(id))
      expect(error).toBeInstanceOf(ValidationError)
      expect(printed(error)).not.toContain(secret.slice(0, 16))
    }
  })

  it('keeps naming a real key ID that is not found (key IDs are public)', async () => {
    const { keys } = setup()
    const error = await rejectionOf(keys.revoke('0000000000000000'))
    expect(error).toBeInstanceOf(KeyNotFoundError)
    expect((error as KeyNotFoundError).keyId).toBe('0000000000000000')
  })
})

describe('unknown field names', () => {
  it('are never repeated, even short plain ones; the known fields are listed instead', async () => {
    const { keys } = setup()
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    const secret = token.split('_')[3]!.slice(0, 32)
    for (const field of [token, secret, 'colour', 's3cr3t']) {
      const error = await rejectionOf(keys.create({ name: 'x', environment: 'live', [field]: 1 } as never))
      expect(error).toBeInstanceOf(ValidationError)
      expect((error as ValidationError).field).toBe('(unknown field)')
      expect((error as ValidationError).message).toContain('known: name, description')
      expect(printed(error)).not.toContain(field)
    }
  })

  it('in options too', () => {
    let error: unknown
    try {
      new KeyManager({ store: new MemoryStore(), pepper: null, ['hunter2hunter2']: true } as never)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect(printed(error)).not.toContain('hunter2hunter2')
    expect((error as ConfigError).message).toContain('known: store, prefix')
  })

  it('keywarden\'s own field names are still named where a call does not take them', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    const error = await rejectionOf(keys.update(key.id, { ownerId: 'someone-else' } as never))
    expect((error as ValidationError).field).toBe('ownerId')
  })

  it('a getter that throws on an unknown field is not named either', async () => {
    const { keys } = setup()
    const input = { name: 'x', environment: 'live' }
    Object.defineProperty(input, 'tok3n_abc', { enumerable: true, get: () => { throw new Error('boom') } })
    const error = await rejectionOf(keys.create(input as never))
    expect(printed(error)).not.toContain('tok3n_abc')
  })
})
